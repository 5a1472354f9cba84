//! A small sans-IO user-agent client: one outgoing call (INVITE, ACK, INFO, BYE) with UDP
//! retransmissions. Used by `hark call` and by tests that need a caller without SIPp.
