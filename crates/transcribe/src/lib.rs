//! Transcription for Hark (SPEC §3.7, issue 5): engines behind one trait and the utterances a
//! transcript is made of.
