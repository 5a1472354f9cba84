//! Sample-rate conversion to 8 kHz: a Kaiser-windowed sinc low-pass evaluated at each output
//! instant (polyphase table), so tones above 4 kHz are removed instead of aliased.

/// Cut-off as a fraction of the lower of the two Nyquist rates: 0.9 × 4 kHz = 3.6 kHz, which
/// keeps the telephone band and leaves room for the transition band below 4 kHz.
const CUTOFF: f64 = 0.9;
/// Zero crossings of the sinc on each side of the centre: sets the transition width
/// (about 750 Hz at 22.05 kHz in).
const ZERO_CROSSINGS: f64 = 24.0;
/// Kaiser β for about 80 dB of stop-band attenuation.
const KAISER_BETA: f64 = 8.0;
/// Above this many distinct fractional positions the position is rounded to the nearest of
/// this many: at most 1/1024 of an input sample of timing error (below -60 dB for speech).
const MAX_PHASES: u64 = 512;

/// Converts mono `samples` at `from_rate` Hz to 8 kHz; the output has
/// `floor(len × 8000 / from_rate)` samples. `from_rate` 0 gives nothing.
pub fn resample_to_8k(samples: &[i16], from_rate: u32) -> Vec<i16> {
    resample(samples, from_rate, 8000)
}

/// Converts mono `samples` from `from` Hz to `to` Hz.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == 0 || to == 0 {
        return Vec::new();
    }
    if from == to {
        return samples.to_vec();
    }
    let g = gcd(u64::from(from), u64::from(to));
    // Output n sits at input position n × down / up.
    let up = u64::from(to) / g;
    let down = u64::from(from) / g;
    let out_len = (samples.len() as u64).saturating_mul(up) / down;
    let Ok(out_len) = usize::try_from(out_len) else {
        return Vec::new();
    };
    let filter = Filter::new(from, to, up.min(MAX_PHASES));
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let num = n * down;
        let mut base = num / up;
        let rem = num % up;
        let mut phase = if filter.phases == up {
            rem
        } else {
            (rem * filter.phases + up / 2) / up
        };
        if phase == filter.phases {
            base += 1;
            phase = 0;
        }
        out.push(filter.apply(samples, base, phase));
    }
    out
}

struct Filter {
    phases: u64,
    /// Taps per phase; tap j of a phase multiplies input sample `base + j - half + 1`.
    taps: usize,
    half: usize,
    coefficients: Vec<f32>,
}

impl Filter {
    fn new(from: u32, to: u32, phases: u64) -> Self {
        // Cut-off in cycles per input sample.
        let fc = CUTOFF * f64::from(from.min(to)) / 2.0 / f64::from(from);
        let half = (ZERO_CROSSINGS / (2.0 * fc)).ceil().max(1.0) as usize;
        let taps = 2 * half;
        let i0_beta = bessel_i0(KAISER_BETA);
        let mut coefficients = Vec::with_capacity(taps * phases as usize);
        for p in 0..phases {
            let frac = p as f64 / phases as f64;
            let start = coefficients.len();
            let mut sum = 0.0;
            for j in 0..taps {
                // Distance from the output instant to this input sample.
                let d = (j as f64 - half as f64 + 1.0) - frac;
                let x = d / half as f64;
                let window = if x.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / i0_beta
                };
                let h = 2.0 * fc * sinc(2.0 * fc * d) * window;
                sum += h;
                coefficients.push(h);
            }
            // Unity gain at DC for every phase, so no ripple from the phase quantisation.
            if sum.abs() > f64::EPSILON {
                for c in &mut coefficients[start..] {
                    *c /= sum;
                }
            }
        }
        Self {
            phases,
            taps,
            half,
            coefficients: coefficients.into_iter().map(|c| c as f32).collect(),
        }
    }

    fn apply(&self, samples: &[i16], base: u64, phase: u64) -> i16 {
        let start = phase as usize * self.taps;
        let Some(kernel) = self.coefficients.get(start..start + self.taps) else {
            return 0;
        };
        // Input index of tap 0; may be negative near the start.
        let first = base as i64 - self.half as i64 + 1;
        let mut acc = 0.0f32;
        match usize::try_from(first)
            .ok()
            .and_then(|f| samples.get(f..f + self.taps))
        {
            Some(window) => {
                for (c, &s) in kernel.iter().zip(window) {
                    acc += c * f32::from(s);
                }
            }
            None => {
                // Edges: samples outside the input count as silence.
                for (j, c) in kernel.iter().enumerate() {
                    let i = first + j as i64;
                    if let Some(&s) = usize::try_from(i).ok().and_then(|i| samples.get(i)) {
                        acc += c * f32::from(s);
                    }
                }
            }
        }
        acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        term *= half / k as f64;
        let t2 = term * term;
        sum += t2;
        if t2 < sum * 1e-16 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sine(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    pub(crate) fn rms(samples: &[i16]) -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    /// Upward zero crossings per second, i.e. the frequency of a clean tone.
    pub(crate) fn tone_frequency(samples: &[i16], rate: u32) -> f64 {
        let ups = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        ups as f64 * f64::from(rate) / samples.len() as f64
    }

    /// The middle, away from the filter's edge effects.
    fn middle(samples: &[i16]) -> &[i16] {
        let q = samples.len() / 4;
        &samples[q..samples.len() - q]
    }

    #[test]
    fn tone_at_1khz_from_22050_stays_1khz_with_exact_length() {
        let input = sine(1000.0, 22050, 22050, 10000.0);
        let out = resample_to_8k(&input, 22050);
        assert_eq!(out.len(), 8000);
        let f = tone_frequency(middle(&out), 8000);
        assert!((f - 1000.0).abs() < 5.0, "frequency {f}");
        let ratio = rms(middle(&out)) / rms(middle(&input));
        assert!((ratio - 1.0).abs() < 0.02, "passband gain {ratio}");
    }

    #[test]
    fn tone_at_6khz_is_attenuated_more_than_30_db() {
        let input = sine(6000.0, 22050, 22050, 10000.0);
        let out = resample_to_8k(&input, 22050);
        assert_eq!(out.len(), 8000);
        let db = 20.0 * (rms(middle(&out)) / rms(middle(&input))).log10();
        assert!(db < -30.0, "only {db:.1} dB");
    }

    #[test]
    fn tone_just_above_4khz_does_not_alias_into_the_band() {
        // 4.5 kHz would fold to 3.5 kHz without the low-pass.
        let input = sine(4500.0, 44100, 44100, 10000.0);
        let out = resample_to_8k(&input, 44100);
        assert_eq!(out.len(), 8000);
        let db = 20.0 * (rms(middle(&out)) / rms(middle(&input))).log10();
        assert!(db < -60.0, "only {db:.1} dB");
    }

    #[test]
    fn integer_ratio_48k_keeps_tone_and_length() {
        let input = sine(440.0, 48000, 48000, 8000.0);
        let out = resample_to_8k(&input, 48000);
        assert_eq!(out.len(), 8000);
        let f = tone_frequency(middle(&out), 8000);
        assert!((f - 440.0).abs() < 5.0, "frequency {f}");
    }

    #[test]
    fn odd_rate_with_rounded_phases_keeps_tone() {
        // gcd(44101, 8000) = 1: 8000 phases rounded to MAX_PHASES.
        let input = sine(1000.0, 44101, 44101, 10000.0);
        let out = resample_to_8k(&input, 44101);
        assert_eq!(out.len(), 8000);
        let f = tone_frequency(middle(&out), 8000);
        assert!((f - 1000.0).abs() < 5.0, "frequency {f}");
        let ratio = rms(middle(&out)) / rms(middle(&input));
        assert!((ratio - 1.0).abs() < 0.02, "gain {ratio}");
    }

    #[test]
    fn upsampling_6k_to_8k_keeps_tone_and_length() {
        let input = sine(500.0, 6000, 6000, 10000.0);
        let out = resample_to_8k(&input, 6000);
        assert_eq!(out.len(), 8000);
        let f = tone_frequency(middle(&out), 8000);
        assert!((f - 500.0).abs() < 5.0, "frequency {f}");
    }

    #[test]
    fn same_rate_is_a_copy_and_zero_rate_is_empty() {
        let input = [1i16, -2, 3, i16::MAX, i16::MIN];
        assert_eq!(resample_to_8k(&input, 8000), input.to_vec());
        assert!(resample_to_8k(&input, 0).is_empty());
        assert!(resample_to_8k(&[], 22050).is_empty());
    }

    #[test]
    fn full_scale_square_wave_keeps_its_plateaus() {
        // Broad-band input at full scale: overshoot saturates, plateaus keep their sign.
        let input: Vec<i16> = (0..4410)
            .map(|i| {
                if (i / 50) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let out = resample_to_8k(&input, 22050);
        assert_eq!(out.len(), 1600);
        // Away from the transitions the output keeps the plateau's sign and stays near full scale.
        for (n, &s) in out.iter().enumerate().skip(100).take(1400) {
            let pos = n as f64 * 22050.0 / 8000.0;
            let into_plateau = pos % 50.0;
            if !(15.0..35.0).contains(&into_plateau) {
                continue;
            }
            let positive = (pos as usize / 50).is_multiple_of(2);
            assert_eq!(s > 20000, positive, "sample {n} = {s}");
            assert_eq!(s < -20000, !positive, "sample {n} = {s}");
        }
    }
}
