//! Generated audio.

/// A sine tone at 8 kHz: `freq_hz`, `millis` long, peak `amplitude`, with 5 ms ramps so it
/// does not click.
pub fn sine(freq_hz: f32, millis: u32, amplitude: i16) -> Vec<i16> {
    todo!()
}

/// The record beep: 1 kHz, 500 ms (SPEC §3.2).
pub fn beep() -> Vec<i16> {
    sine(1000.0, 500, 8000)
}
