//! Envelope streaming runs in constant memory: 256 MiB go through encrypt and
//! then decrypt, joined by a pipe, while peak memory (VmHWM) grows by less
//! than 16 MiB. Alone in its own test binary so nothing else moves VmHWM.

use std::io::{self, Read, Write};

use localkms::{EncryptionContext, Kms};

const TOTAL: u64 = 256 << 20;

/// Deterministic data: a 4 KiB pattern stamped with its block number.
struct Source {
    pos: u64,
    pattern: Vec<u8>,
}

impl Source {
    fn new() -> Self {
        Self {
            pos: 0,
            pattern: (0..4096u32).map(|i| (i * 7 + 3) as u8).collect(),
        }
    }

    /// Fills `buf` with the bytes from `pos` on.
    fn fill(pattern: &[u8], pos: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let p = pos + done as u64;
            let off = (p % 4096) as usize;
            let n = (4096 - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&pattern[off..off + n]);
            let block = (p / 4096).to_le_bytes();
            // The first 8 bytes of each block carry its number.
            if off < 8 {
                let k = (8 - off).min(n);
                buf[done..done + k].copy_from_slice(&block[off..off + k]);
            }
            done += n;
        }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (TOTAL - self.pos).min(buf.len() as u64) as usize;
        Self::fill(&self.pattern, self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Checks that what is written is exactly the source, without keeping it.
struct Check {
    pos: u64,
    pattern: Vec<u8>,
    scratch: Vec<u8>,
}

impl Write for Check {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        Source::fill(&self.pattern, self.pos, &mut self.scratch);
        assert!(self.scratch == buf, "output differs near byte {}", self.pos);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn streams_256_mib_in_constant_memory() {
    let kms = Kms::in_memory().expect("kms");
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    let ctx = EncryptionContext::from_pairs([("test", "memory")]).expect("ctx");
    // Warm up allocator and caches with a small run first.
    let env = kms
        .envelope_encrypt(&key, &[1u8; 200_000], &ctx)
        .expect("warm");
    kms.envelope_decrypt(&env, &ctx).expect("warm");
    drop(env);

    let before = vm_hwm_kib();
    let (reader, writer) = io::pipe().expect("pipe");
    let out = std::thread::scope(|s| {
        let encrypting = s.spawn(|| {
            let w = io::BufWriter::with_capacity(1 << 16, writer);
            kms.envelope_encrypt_stream(&key, &ctx, Source::new(), w)
        });
        let check = Check {
            pos: 0,
            pattern: Source::new().pattern,
            scratch: Vec::new(),
        };
        let decrypted = kms.envelope_decrypt_stream(&ctx, io::BufReader::new(reader), check);
        (encrypting.join().expect("encrypt thread"), decrypted)
    });
    let (enc, dec) = out;
    let enc = enc.expect("encrypt");
    let dec = dec.expect("decrypt");
    assert_eq!(enc.plaintext_bytes, TOTAL);
    assert_eq!(dec.plaintext_bytes, TOTAL);
    let grown_kib = vm_hwm_kib().saturating_sub(before);
    eprintln!("VmHWM grew by {grown_kib} KiB over {} MiB", TOTAL >> 20);
    assert!(grown_kib < 16 * 1024, "VmHWM grew by {grown_kib} KiB");
}
