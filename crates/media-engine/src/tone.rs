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

/// The three rising special-information tones (ITU-T E.180: 950, 1400, 1800 Hz, 330 ms each)
/// callers recognise as "this did not work"; used when the error prompt cannot be spoken.
pub fn error_tones() -> Vec<i16> {
    let mut out = Vec::with_capacity(3 * 2640 + 8000);
    for freq in [950.0, 1400.0, 1800.0] {
        out.extend(sine(freq, 330, 6000));
    }
    out.extend(std::iter::repeat_n(0, 8000));
    out
}

/// The (row, column) frequencies of a DTMF key (ITU-T Q.23), `None` for other characters.
pub fn dtmf_frequencies(key: char) -> Option<(f32, f32)> {
    let (row, col) = match key.to_ascii_uppercase() {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        _ => return None,
    };
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    Some((ROWS[row], COLS[col]))
}

/// An in-band DTMF tone for `key`, `millis` long (for peers without telephone-event).
pub fn dtmf_tone(key: char, millis: u32) -> Vec<i16> {
    let Some((low, high)) = dtmf_frequencies(key) else {
        return vec![0; millis as usize * 8];
    };
    let a = sine(low, millis, 5000);
    let b = sine(high, millis, 5000);
    a.iter()
        .zip(&b)
        .map(|(x, y)| x.saturating_add(*y))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_tone_has_both_frequencies_of_q23() {
        assert_eq!(dtmf_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(dtmf_frequencies('x'), None);
        let t = dtmf_tone('5', 100);
        assert_eq!(t.len(), 800);
        assert!(
            t.iter().any(|&v| v.unsigned_abs() > 8000),
            "two tones add up"
        );
        assert_eq!(error_tones().len(), 3 * 2640 + 8000);
    }

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
