//! Backup encryption: XChaCha20-Poly1305 in the STREAM construction
//! (RustCrypto's `aead::stream`, 64 KiB segments, the last one flagged), under
//! a backup key that is not the master key. A file is
//! `MAGIC | key id (8 hex) | 19-byte random nonce | segments`, the header being
//! associated data of every segment: a flipped bit, a dropped, reordered or
//! duplicated segment, or a file cut short all fail to decrypt.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"SGBKUP01";
const NONCE_LEN: usize = 19;
const HEADER_LEN: usize = MAGIC.len() + 8 + NONCE_LEN;
const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;

/// The key backups are encrypted with: one base64 line of 32 bytes (`scopegate keys generate`).
pub struct BackupKey {
    id: String,
    secret: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({})", self.id)
    }
}

impl Clone for BackupKey {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            secret: SecretBox::new(Box::new(*self.secret.expose_secret())),
        }
    }
}

impl BackupKey {
    /// The first non-blank, non-comment line, 32 bytes of base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("the backup key is empty (create one with `scopegate keys generate`)")?;
        let bytes: [u8; 32] = B64
            .decode(line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the backup key is not 32 bytes of base64")?;
        Ok(Self {
            id: hex::encode(&Sha256::digest(bytes)[..4]),
            secret: SecretBox::new(Box::new(bytes)),
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("backup key file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("backup key file {}: {e}", path.display()))
    }

    /// Same id scheme as the master keys, so the two can be told apart.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.secret.expose_secret().into())
    }
}

fn crypto_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Encrypts everything written to it; `finish` seals the last segment.
pub struct EncryptWriter<W: Write> {
    inner: W,
    stream: Option<EncryptorBE32<XChaCha20Poly1305>>,
    header: Vec<u8>,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    pub fn new(mut inner: W, key: &BackupKey) -> io::Result<Self> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(key.id.as_bytes());
        header.extend_from_slice(&nonce);
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            stream: Some(EncryptorBE32::from_aead(key.cipher(), (&nonce).into())),
            header,
            buf: Vec::with_capacity(SEGMENT * 2),
        })
    }

    /// Seals the last segment and returns the inner writer (not yet synced).
    pub fn finish(mut self) -> io::Result<W> {
        let stream = self.stream.take().expect("not finished");
        let sealed = stream
            .encrypt_last(Payload {
                msg: &self.buf,
                aad: &self.header,
            })
            .map_err(|_| crypto_error("encryption failed"))?;
        self.inner.write_all(&sealed)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        // Keep at least one byte back: the last segment is sealed by `finish`.
        while self.buf.len() > SEGMENT {
            let stream = self.stream.as_mut().expect("not finished");
            let sealed = stream
                .encrypt_next(Payload {
                    msg: &self.buf[..SEGMENT],
                    aad: &self.header,
                })
                .map_err(|_| crypto_error("encryption failed"))?;
            self.inner.write_all(&sealed)?;
            self.buf.drain(..SEGMENT);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts what [`EncryptWriter`] wrote; any damage or truncation is an `InvalidData` error.
pub struct DecryptReader<R: Read> {
    inner: R,
    stream: Option<DecryptorBE32<XChaCha20Poly1305>>,
    header: Vec<u8>,
    pending: Vec<u8>,
    plain: Vec<u8>,
    pos: usize,
}

impl<R: Read> DecryptReader<R> {
    pub fn new(mut inner: R, key: &BackupKey) -> io::Result<Self> {
        let mut header = vec![0u8; HEADER_LEN];
        inner
            .read_exact(&mut header)
            .map_err(|_| crypto_error("not a scopegate backup (too short)"))?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(crypto_error("not a scopegate backup"));
        }
        let id = String::from_utf8_lossy(&header[MAGIC.len()..MAGIC.len() + 8]).to_string();
        if id != key.id {
            return Err(crypto_error(&format!(
                "the backup was encrypted with backup key {id}, not with this one ({})",
                key.id
            )));
        }
        let nonce: [u8; NONCE_LEN] = header[MAGIC.len() + 8..].try_into().expect("length");
        Ok(Self {
            inner,
            stream: Some(DecryptorBE32::from_aead(key.cipher(), (&nonce).into())),
            header,
            pending: Vec::with_capacity(SEGMENT + TAG + 1),
            plain: Vec::new(),
            pos: 0,
        })
    }

    /// Decrypts the next segment into `plain`; false at the end.
    fn next_segment(&mut self) -> io::Result<bool> {
        if self.stream.is_none() {
            return Ok(false);
        }
        // One byte past a full segment tells a full middle segment from a full last one.
        while self.pending.len() < SEGMENT + TAG + 1 {
            let mut chunk = [0u8; 16 * 1024];
            let want = (SEGMENT + TAG + 1 - self.pending.len()).min(chunk.len());
            let n = self.inner.read(&mut chunk[..want])?;
            if n == 0 {
                break;
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
        let damaged = || crypto_error("the backup is damaged, cut short or not for this key");
        if self.pending.len() > SEGMENT + TAG {
            let stream = self.stream.as_mut().expect("open");
            self.plain = stream
                .decrypt_next(Payload {
                    msg: &self.pending[..SEGMENT + TAG],
                    aad: &self.header,
                })
                .map_err(|_| damaged())?;
            self.pending.drain(..SEGMENT + TAG);
        } else {
            let stream = self.stream.take().expect("open");
            self.plain = stream
                .decrypt_last(Payload {
                    msg: &self.pending,
                    aad: &self.header,
                })
                .map_err(|_| damaged())?;
            self.pending.clear();
        }
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if !self.next_segment()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BackupKey {
        BackupKey::parse(&crate::keys::generate_key()).unwrap()
    }

    fn seal(key: &BackupKey, data: &[u8]) -> Vec<u8> {
        let mut w = EncryptWriter::new(Vec::new(), key).unwrap();
        for piece in data.chunks(7_000) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(key: &BackupKey, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        DecryptReader::new(sealed, key)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_segment_boundaries_and_detects_damage() {
        let key = key();
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            200_001,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&key, &data);
            assert_eq!(open(&key, &sealed).unwrap(), data, "length {len}");
            if len > SEGMENT {
                // Cut at a segment boundary: the last-segment flag is missing.
                let cut = &sealed[..HEADER_LEN + SEGMENT + TAG];
                assert!(open(&key, cut).is_err(), "truncation of {len}");
            }
            let mut flipped = sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(open(&key, &flipped).is_err());
        }
        let other = self::key();
        let err = open(&other, &seal(&key, b"x")).unwrap_err();
        assert!(err.to_string().contains("backup key"), "{err}");
    }
}
