//! The SPSC ring from the media task to the recorder (rtrb): fixed capacity, no allocation
//! after construction, and a push that never blocks.

use crate::MediaItem;

pub struct MediaProducer {
    inner: rtrb::Producer<MediaItem>,
    dropped: u64,
}

pub struct MediaConsumer {
    inner: rtrb::Consumer<MediaItem>,
}

pub fn media_ring(capacity: usize) -> (MediaProducer, MediaConsumer) {
    let (p, c) = rtrb::RingBuffer::new(capacity);
    (
        MediaProducer {
            inner: p,
            dropped: 0,
        },
        MediaConsumer { inner: c },
    )
}

impl MediaProducer {
    /// Pushes the item; when the ring is full the item is dropped and counted.
    pub fn push(&mut self, item: MediaItem) -> bool {
        match self.inner.push(item) {
            Ok(()) => true,
            Err(_) => {
                self.dropped += 1;
                false
            }
        }
    }
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

impl MediaConsumer {
    pub fn pop(&mut self) -> Option<MediaItem> {
        self.inner.pop().ok()
    }
    pub fn len(&self) -> usize {
        self.inner.slots()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}
