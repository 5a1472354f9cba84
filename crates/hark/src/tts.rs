//! Text to speech for `<Say>` (espeak-ng as a subprocess), cached.
