//! Length-prefixed frames and bincode-encoded messages over any byte stream.
//!
//! A frame is a `u32` big-endian length followed by that many payload bytes. A reader names
//! the largest frame it accepts; the length is checked against it before anything is
//! allocated, and even below the limit the buffer grows only as bytes actually arrive, so a
//! peer announcing a huge length cannot make us allocate it. Messages are serde types in
//! bincode 2 (`config::standard()`), one message per frame, with trailing bytes refused.
//! Decoding runs under a bincode byte limit ([`MAX_DECODE_CLAIM`]): bincode allocates a
//! string's or byte vector's buffer from its length prefix before reading it, and the limit
//! refuses a prefix beyond it first, so no prefix makes decoding allocate more than that.
//!
//! Generic over tokio's `AsyncRead`/`AsyncWrite`: quinn streams in production,
//! `tokio::io::duplex` in tests. Holds no protocol logic.

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = std::mem::size_of::<u32>();

/// Largest control-plane frame (requests, replies, share submissions): 1 MiB.
pub const MAX_CONTROL_FRAME: usize = 1 << 20;

/// The most bytes bincode may claim while decoding one message of at most
/// [`MAX_CONTROL_FRAME`] bytes: 16 MiB. bincode counts every integer at its full width (a
/// `u128` encoded in one varint byte claims 16), so a valid message claims at most 16 times
/// its length; a length prefix is claimed before its buffer is allocated, so a prefix beyond
/// this limit is refused without allocating.
pub const MAX_DECODE_CLAIM: usize = 16 * MAX_CONTROL_FRAME;

/// The read buffer grows by at most this much before the bytes have arrived.
const READ_CHUNK: usize = 1 << 20;

/// A framing or message-decoding failure.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The stream ended cleanly where a frame would have started.
    #[error("stream closed: expected a frame, found end of stream")]
    Closed,
    /// The stream ended inside a frame.
    #[error("truncated frame: expected the rest of the frame, found end of stream")]
    Truncated,
    /// The announced (or offered) frame length exceeds the limit.
    #[error("frame too large: expected at most {max} bytes, found a length of {len}")]
    TooLarge { len: usize, max: usize },
    /// The payload is not a valid encoding of the expected message type.
    #[error("malformed message: {0}")]
    Decode(String),
    /// The underlying stream failed.
    #[error("stream failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one frame carrying `payload` and returns the bytes written, header included.
/// Payloads longer than `u32::MAX` are refused.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
) -> Result<u64, FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    let header = len.to_be_bytes();
    w.write_all(&header).await?;
    w.write_all(payload).await?;
    w.flush().await?;
    Ok((header.len() + payload.len()) as u64)
}

/// Reads one frame of at most `max` payload bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Truncated
            });
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut buf = Vec::with_capacity(len.min(READ_CHUNK));
    while buf.len() < len {
        let start = buf.len();
        let want = (len - start).min(READ_CHUNK);
        buf.resize(start + want, 0);
        match r.read_exact(&mut buf[start..]).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(FrameError::Truncated)
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(buf)
}

/// Encodes a message with bincode 2 (`config::standard()`).
///
/// # Panics
/// Only if `T`'s `Serialize` implementation itself fails, which derived implementations of
/// plain data types never do (a programming error, never network input).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    try_encode(msg).expect("bincode encoding of a message type failed")
}

fn try_encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(msg, bincode::config::standard())
}

/// Decodes a message encoded by [`encode`]; the whole input must be consumed. Input longer
/// than [`MAX_CONTROL_FRAME`] is refused, and no length prefix inside it makes decoding
/// allocate more than [`MAX_DECODE_CLAIM`] bytes for one buffer.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    if bytes.len() > MAX_CONTROL_FRAME {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max: MAX_CONTROL_FRAME,
        });
    }
    let config = bincode::config::standard().with_limit::<MAX_DECODE_CLAIM>();
    let (msg, used) = bincode::serde::decode_from_slice(bytes, config).map_err(|e| {
        FrameError::Decode(format!(
            "expected a {}, found undecodable bytes: {e}",
            short_type_name::<T>()
        ))
    })?;
    if used != bytes.len() {
        return Err(FrameError::Decode(format!(
            "expected a {} of {used} bytes, found {} trailing bytes",
            short_type_name::<T>(),
            bytes.len() - used
        )));
    }
    Ok(msg)
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Encodes `msg` and writes it as one frame.
pub async fn send_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let bytes = try_encode(msg).map_err(|e| {
        FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("encoding a {}: {e}", short_type_name::<T>()),
        ))
    })?;
    write_frame(w, &bytes).await.map(|_| ())
}

/// Reads one frame of at most `max` bytes and decodes it as a `T`.
pub async fn recv_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<T, FrameError> {
    let bytes = read_frame(r, max).await?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use tokio::io::duplex;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        id: u64,
        name: String,
        values: Vec<u32>,
    }

    fn sample() -> Msg {
        Msg {
            id: 7,
            name: "median".into(),
            values: vec![1, 2, 3, 1 << 30],
        }
    }

    #[tokio::test]
    async fn round_trip_frames_and_messages() {
        let (mut a, mut b) = duplex(64 * 1024);
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let big2 = big.clone();
        let writer = tokio::spawn(async move {
            write_frame(&mut a, b"hello").await.unwrap();
            write_frame(&mut a, b"").await.unwrap();
            write_frame(&mut a, &big2).await.unwrap();
            send_msg(&mut a, &sample()).await.unwrap();
        });
        assert_eq!(read_frame(&mut b, 16).await.unwrap(), b"hello");
        assert_eq!(read_frame(&mut b, 16).await.unwrap(), b"");
        assert_eq!(read_frame(&mut b, 4 << 20).await.unwrap(), big);
        let m: Msg = recv_msg(&mut b, MAX_CONTROL_FRAME).await.unwrap();
        assert_eq!(m, sample());
        writer.await.unwrap();
        // The writer is gone: a clean end of stream.
        assert!(matches!(
            read_frame(&mut b, 16).await,
            Err(FrameError::Closed)
        ));
    }

    /// What `write_frame` reports is every byte that reached the stream, header included.
    #[tokio::test]
    async fn write_frame_reports_every_byte_written() {
        let mut wire: Vec<u8> = Vec::new();
        let mut reported = 0;
        for len in [0usize, 1, 16, 1000] {
            let n = write_frame(&mut wire, &vec![7u8; len]).await.unwrap();
            assert_eq!(n, (HEADER_LEN + len) as u64);
            reported += n;
        }
        assert_eq!(reported, wire.len() as u64);
    }

    #[tokio::test]
    async fn oversized_length_refused_before_reading() {
        let (mut a, mut b) = duplex(1024);
        // Announce 4 GiB - 1 and send nothing else; the writer stays open, so a reader that
        // tried to read (or allocate) the body would hang or fail differently.
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        match read_frame(&mut b, MAX_CONTROL_FRAME).await {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, MAX_CONTROL_FRAME);
            }
            other => panic!("expected TooLarge, found {other:?}"),
        }
        let (mut a, mut b) = duplex(1024);
        write_frame(&mut a, &[0u8; 17]).await.unwrap();
        let err = read_frame(&mut b, 16).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 17, max: 16 }));
        assert!(err.to_string().contains("at most 16"), "{err}");
    }

    #[tokio::test]
    async fn lying_length_below_limit_does_not_preallocate() {
        // 1 GiB announced, 10 bytes sent, then end of stream: Truncated, and the buffer never
        // grew past one chunk (the test would take a 1 GiB zero-fill otherwise).
        let (mut a, mut b) = duplex(1024);
        a.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
        a.write_all(&[1u8; 10]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 1 << 30).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn truncated_frames() {
        // End of stream inside the body.
        let (mut a, mut b) = duplex(1024);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100).await,
            Err(FrameError::Truncated)
        ));
        // End of stream inside the length.
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0u8, 0]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn malformed_bincode_is_decode_error() {
        let (mut a, mut b) = duplex(1024);
        // A string length far beyond the payload.
        write_frame(&mut a, &[7, 0xfb, 0xff, 0xff, b'x'])
            .await
            .unwrap();
        match recv_msg::<_, Msg>(&mut b, 100).await {
            Err(FrameError::Decode(s)) => assert!(s.contains("Msg"), "{s}"),
            other => panic!("expected Decode, found {other:?}"),
        }
        // Invalid UTF-8 in the string.
        let mut bytes = encode(&sample());
        bytes[2] = 0xff;
        assert!(matches!(decode::<Msg>(&bytes), Err(FrameError::Decode(_))));
    }

    #[test]
    fn trailing_bytes_refused() {
        let mut bytes = encode(&sample());
        assert_eq!(decode::<Msg>(&bytes).unwrap(), sample());
        bytes.push(0);
        match decode::<Msg>(&bytes) {
            Err(FrameError::Decode(s)) => assert!(s.contains("1 trailing"), "{s}"),
            other => panic!("expected Decode, found {other:?}"),
        }
    }
}
