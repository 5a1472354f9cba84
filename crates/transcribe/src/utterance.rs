//! Utterances (SPEC §8, issue 5 §3) and the VAD segmentation they are built from.

use record_engine::{SpeechConfig, SpeechDetector};

use crate::Transcript;

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// 1-based.
    pub order: u32,
    pub start_sec: f64,
    pub duration_sec: f64,
    pub speaker: String,
    pub text: String,
}

/// One utterance per segment with text, in the transcript's order.
pub fn utterances(transcript: &Transcript, speaker: &str) -> Vec<Utterance> {
    transcript
        .segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .zip(1u32..)
        .map(|(s, order)| Utterance {
            order,
            start_sec: s.start_sec,
            duration_sec: (s.end_sec - s.start_sec).max(0.0),
            speaker: speaker.to_string(),
            text: s.text.trim().to_string(),
        })
        .collect()
}

/// Pauses shorter than this stay inside one span (breaths, stop consonants).
const MERGE_GAP_SECS: f64 = 0.3;
/// Shorter spans are clicks or line noise.
const MIN_SPAN_SECS: f64 = 0.2;
/// Kept on each side so word onsets and tails reach the recogniser.
const PAD_SECS: f64 = 0.1;

/// Rounded to the millisecond: frames are 20 ms, and round numbers survive JSON unchanged.
fn ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// Speech spans of a mono recording in seconds: 20 ms frames judged by the recorder's
/// [`SpeechDetector`] (default threshold and VAD mode), gaps under 300 ms merged, spans under
/// 200 ms dropped, 100 ms of padding each side (clamped to the recording), millisecond
/// resolution.
pub fn speech_spans(pcm: &[i16], rate: u32) -> Vec<(f64, f64)> {
    let frame = (rate / 50) as usize;
    if frame == 0 || pcm.is_empty() {
        return Vec::new();
    }
    let secs = |samples: usize| samples as f64 / f64::from(rate);
    let total = secs(pcm.len());
    let mut detector = SpeechDetector::with_sample_rate(SpeechConfig::default(), rate);

    // Raw runs of speech frames, in samples.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, chunk) in pcm.chunks(frame).enumerate() {
        if !detector.is_speech(chunk) {
            continue;
        }
        let (start, end) = (i * frame, i * frame + chunk.len());
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
    }

    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (s, e) in runs {
        let (s, e) = (secs(s), secs(e));
        match merged.last_mut() {
            Some(last) if s - last.1 < MERGE_GAP_SECS => last.1 = e,
            _ => merged.push((s, e)),
        }
    }

    let mut out: Vec<(f64, f64)> = Vec::new();
    for (s, e) in merged.into_iter().filter(|(s, e)| e - s >= MIN_SPAN_SECS) {
        let (s, e) = (ms((s - PAD_SECS).max(0.0)), ms((e + PAD_SECS).min(total)));
        match out.last_mut() {
            // Padding can make neighbours touch.
            Some(last) if s <= last.1 => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Segment;

    /// Vowel-like signal (150 Hz harmonics, formants, 4 Hz syllable modulation) that webrtc-vad
    /// calls speech; the same recipe as record-engine's tests.
    fn vowel(start: usize, len: usize, rate: u32) -> Vec<i16> {
        (start..start + len)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let mut v = 0.0;
                for h in 1..=20u32 {
                    let f = 150.0 * f64::from(h);
                    if f >= f64::from(rate) / 2.0 {
                        break;
                    }
                    let formant = 1.0
                        + 2.0 * (-((f - 700.0) / 200.0).powi(2)).exp()
                        + 1.5 * (-((f - 1200.0) / 250.0).powi(2)).exp();
                    v += formant / f64::from(h) * (2.0 * std::f64::consts::PI * f * t).sin();
                }
                let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
                (v * env * 8000.0 / 4.0).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    /// Silence and speech pieces, `(is_speech, seconds)`.
    fn signal(rate: u32, pieces: &[(bool, f64)]) -> Vec<i16> {
        let mut out = Vec::new();
        for &(speech, secs) in pieces {
            let n = (secs * f64::from(rate)).round() as usize;
            if speech {
                let v = vowel(out.len(), n, rate);
                out.extend(v);
            } else {
                out.resize(out.len() + n, 0);
            }
        }
        out
    }

    #[test]
    fn one_burst_gives_one_padded_span() {
        let pcm = signal(8000, &[(false, 1.0), (true, 1.5), (false, 1.0)]);
        let spans = speech_spans(&pcm, 8000);
        assert_eq!(spans.len(), 1, "{spans:?}");
        // 100 ms padding; webrtc-vad's own hangover may extend the tail by a few frames.
        assert_eq!(spans[0].0, 0.9);
        assert!(spans[0].1 >= 2.6 && spans[0].1 <= 2.85, "end {spans:?}");
    }

    #[test]
    fn gap_under_300ms_is_merged() {
        let pcm = signal(
            8000,
            &[
                (false, 0.5),
                (true, 0.6),
                (false, 0.2),
                (true, 0.6),
                (false, 0.8),
            ],
        );
        let spans = speech_spans(&pcm, 8000);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].0, 0.4);
    }

    #[test]
    fn gap_of_a_second_keeps_two_spans() {
        let pcm = signal(
            8000,
            &[
                (false, 0.5),
                (true, 0.6),
                (false, 1.0),
                (true, 0.6),
                (false, 0.8),
            ],
        );
        let spans = speech_spans(&pcm, 8000);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(spans[0].0, 0.4);
        assert_eq!(spans[1].0, 2.0);
    }

    #[test]
    fn burst_under_200ms_is_dropped() {
        let pcm = signal(8000, &[(false, 1.0), (true, 0.08), (false, 1.0)]);
        assert_eq!(speech_spans(&pcm, 8000), vec![]);
    }

    #[test]
    fn padding_is_clamped_to_the_recording() {
        let pcm = signal(8000, &[(true, 1.0)]);
        let spans = speech_spans(&pcm, 8000);
        assert_eq!(spans, vec![(0.0, 1.0)]);
    }

    #[test]
    fn silence_and_empty_input_give_no_spans() {
        assert_eq!(speech_spans(&vec![0i16; 16000], 8000), vec![]);
        assert_eq!(speech_spans(&[], 8000), vec![]);
        assert_eq!(speech_spans(&[1000; 100], 0), vec![]);
    }

    #[test]
    fn wideband_16k_is_segmented_too() {
        let pcm = signal(16000, &[(false, 1.0), (true, 1.0), (false, 1.0)]);
        let spans = speech_spans(&pcm, 16000);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].0, 0.9);
    }

    fn transcript(segments: Vec<Segment>) -> Transcript {
        Transcript {
            text: String::new(),
            segments,
            language: "en-US".into(),
            engine: "test".into(),
            audio_secs: 10.0,
            processing_secs: 1.0,
            chunks: 0,
        }
    }

    #[test]
    fn utterances_skip_empty_segments_and_number_from_one() {
        let t = transcript(vec![
            Segment {
                start_sec: 0.5,
                end_sec: 2.0,
                text: " hello ".into(),
            },
            Segment {
                start_sec: 2.5,
                end_sec: 3.0,
                text: "  ".into(),
            },
            Segment {
                start_sec: 4.0,
                end_sec: 6.25,
                text: "goodbye".into(),
            },
        ]);
        let u = utterances(&t, "caller");
        assert_eq!(
            u,
            vec![
                Utterance {
                    order: 1,
                    start_sec: 0.5,
                    duration_sec: 1.5,
                    speaker: "caller".into(),
                    text: "hello".into(),
                },
                Utterance {
                    order: 2,
                    start_sec: 4.0,
                    duration_sec: 2.25,
                    speaker: "caller".into(),
                    text: "goodbye".into(),
                },
            ]
        );
    }

    #[test]
    fn utterance_duration_is_never_negative() {
        let t = transcript(vec![Segment {
            start_sec: 3.0,
            end_sec: 2.0,
            text: "odd".into(),
        }]);
        assert_eq!(utterances(&t, "caller")[0].duration_sec, 0.0);
    }
}
