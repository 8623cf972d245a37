//! Metadata that would leak if it were visible (content type, codec, duration) travels inside
//! the ciphertext, as the prelude of the content stream (docs/spec/envelope.md §Prelude).

use crate::Error;

/// Most bytes a prelude body may have.
pub const MAX_PRELUDE_LEN: usize = 1024;
/// Most bytes of a text field (content type, codec).
pub const MAX_TEXT_LEN: usize = 64;

const TAG_CONTENT_TYPE: u8 = 0x01;
const TAG_CODEC: u8 = 0x02;
const TAG_DURATION_MS: u8 = 0x03;

/// What the recording is, sealed inside the envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// Media type, e.g. `audio/wav` or `audio/ogg`.
    pub content_type: Option<String>,
    /// Codec, e.g. `pcm_s16le` or `opus`.
    pub codec: Option<String>,
    /// Duration in milliseconds, when known at sealing time.
    pub duration_ms: Option<u32>,
}

impl Metadata {
    /// Metadata with a content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
    /// Metadata with a codec.
    pub fn with_codec(mut self, codec: impl Into<String>) -> Self {
        self.codec = Some(codec.into());
        self
    }
    /// Metadata with a duration.
    pub fn with_duration_ms(mut self, duration_ms: u32) -> Self {
        self.duration_ms = Some(duration_ms);
        self
    }

    /// The prelude: `len (u16 BE) || entries`, entries `tag (u8) || len (u8) || value`, in
    /// ascending tag order, each tag at most once.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        for (tag, text) in [
            (TAG_CONTENT_TYPE, &self.content_type),
            (TAG_CODEC, &self.codec),
        ] {
            if let Some(t) = text {
                if t.len() > MAX_TEXT_LEN {
                    return Err(Error::Metadata("text fields are at most 64 bytes"));
                }
                if t.is_empty() {
                    // Absent and empty must not be two spellings of one thing: absent it is.
                    return Err(Error::Metadata("text fields are absent or 1 to 64 bytes"));
                }
                body.push(tag);
                body.push(t.len() as u8);
                body.extend_from_slice(t.as_bytes());
            }
        }
        if let Some(d) = self.duration_ms {
            body.push(TAG_DURATION_MS);
            body.push(4);
            body.extend_from_slice(&d.to_be_bytes());
        }
        let mut out = Vec::with_capacity(2 + body.len());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses a prelude body (without its length prefix). Unknown tags `0x04..=0xff` are
    /// skipped (they are authenticated; a newer sealer may add fields); tag `0x00` is reserved
    /// and refused (it can never ascend); known tags must be well-formed (text 1..=64 bytes of
    /// UTF-8, duration exactly 4 bytes); tags must ascend strictly.
    pub(crate) fn decode(mut body: &[u8]) -> Result<Self, ()> {
        let mut m = Metadata::default();
        let mut last_tag = 0u8;
        while let [tag, len, rest @ ..] = body {
            let len = usize::from(*len);
            if *tag <= last_tag || rest.len() < len {
                return Err(());
            }
            last_tag = *tag;
            let (value, tail) = rest.split_at(len);
            match *tag {
                TAG_CONTENT_TYPE => m.content_type = Some(text(value)?),
                TAG_CODEC => m.codec = Some(text(value)?),
                TAG_DURATION_MS => {
                    let v: [u8; 4] = value.try_into().map_err(|_| ())?;
                    m.duration_ms = Some(u32::from_be_bytes(v));
                }
                _ => {}
            }
            body = tail;
        }
        if body.is_empty() { Ok(m) } else { Err(()) }
    }
}

fn text(value: &[u8]) -> Result<String, ()> {
    if value.is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(());
    }
    String::from_utf8(value.to_vec()).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Metadata::default()
            .with_content_type("audio/wav")
            .with_codec("pcm_s16le")
            .with_duration_ms(4200);
        let enc = m.encode().unwrap();
        assert_eq!(
            usize::from(u16::from_be_bytes([enc[0], enc[1]])),
            enc.len() - 2
        );
        assert_eq!(Metadata::decode(&enc[2..]).unwrap(), m);
        let empty = Metadata::default().encode().unwrap();
        assert_eq!(empty, vec![0, 0]);
    }

    #[test]
    fn malformed_bodies_fail() {
        assert!(Metadata::decode(&[1, 5, b'a']).is_err()); // short value
        assert!(Metadata::decode(&[2, 0, 1, 0]).is_err()); // tags not ascending
        assert!(Metadata::decode(&[3, 3, 0, 0, 0]).is_err()); // duration not 4 bytes
        assert!(Metadata::decode(&[1, 1, 0xff]).is_err()); // invalid UTF-8
        assert!(Metadata::decode(&[9]).is_err()); // dangling byte
        assert!(Metadata::decode(&[0, 0]).is_err()); // reserved tag 0
        assert!(Metadata::decode(&[1, 0]).is_err()); // empty text
        assert_eq!(
            Metadata::decode(&[0x7f, 1, 0]).unwrap(),
            Metadata::default()
        );
    }

    #[test]
    fn too_long_text_is_refused() {
        let m = Metadata::default().with_codec("x".repeat(65));
        assert!(matches!(m.encode(), Err(Error::Metadata(_))));
        let m = Metadata::default().with_content_type("");
        assert!(matches!(m.encode(), Err(Error::Metadata(_))));
    }
}
