//! Generated audio.

/// A sine tone at 8 kHz: `freq_hz`, `millis` long, peak `amplitude`, with 5 ms ramps so it
/// does not click.
pub fn sine(freq_hz: f32, millis: u32, amplitude: i16) -> Vec<i16> {
    let rate = crate::SAMPLE_RATE as usize;
    let n = millis as usize * rate / 1000;
    // Never let the two ramps overlap on very short tones.
    let ramp = (rate / 200).min(n / 2).max(1);
    let step = std::f32::consts::TAU * freq_hz / rate as f32;
    (0..n)
        .map(|i| {
            let edge = i.min(n - 1 - i);
            let gain = (edge as f32 / ramp as f32).min(1.0);
            let v = f32::from(amplitude) * gain * (step * i as f32).sin();
            v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
        })
        .collect()
}

/// The record beep: 1 kHz, 500 ms (SPEC §3.2).
pub fn beep() -> Vec<i16> {
    sine(1000.0, 500, 8000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_8_samples_per_millisecond() {
        assert_eq!(sine(440.0, 500, 1000).len(), 4000);
        assert_eq!(beep().len(), 4000);
        assert!(sine(440.0, 0, 1000).is_empty());
    }

    #[test]
    fn both_ends_ramp_over_5_ms() {
        let s = sine(1000.0, 100, 8000);
        assert_eq!(s[0], 0);
        assert_eq!(*s.last().unwrap(), 0);
        let peak = |r: &[i16]| r.iter().map(|v| v.unsigned_abs()).max().unwrap();
        // First 2.5 ms stays under half the amplitude, the middle reaches the peak.
        assert!(peak(&s[..20]) <= 4000, "{}", peak(&s[..20]));
        assert!(peak(&s[s.len() - 20..]) <= 4000);
        assert!(peak(&s[40..s.len() - 40]) >= 7990);
        assert!(peak(&s) <= 8000);
    }

    #[test]
    fn frequency_matches_zero_crossings() {
        // 1 kHz for 1 s: 2000 sign changes (ramps only scale).
        let s = sine(1000.0, 1000, 8000);
        let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((1990..=2001).contains(&crossings), "{crossings}");
    }
}
