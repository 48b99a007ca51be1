//! Ogg Opus files (RFC 7845) from a stream of 20 ms Opus packets: the recording format.

use std::io::Write;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Samples per packet at 48 kHz (20 ms).
const PACKET_SAMPLES: u64 = 960;
/// Packets per page: a page (one second) is on disk as soon as it is full.
const PACKETS_PER_PAGE: u64 = 50;
/// The encoder's look-ahead that players skip at the start (libopus' usual 6.5 ms).
const PRE_SKIP: u16 = 312;

/// An Ogg Opus stream being written: headers first, then the packets in order, ended by
/// [`OggOpusWriter::finish`] (which marks the end of the stream on the last page).
pub struct OggOpusWriter<W: Write> {
    writer: PacketWriter<'static, W>,
    serial: u32,
    /// The packet held back so that the last one can end the stream, and its mix index.
    pending: Option<(Vec<u8>, u64)>,
    /// Mix index of the first packet: granule positions count from it.
    first_index: Option<u64>,
    written: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the identification and comment headers (mono, 48 kHz, `vendor`).
    pub fn new(output: W, serial: u32, vendor: &str) -> std::io::Result<Self> {
        let mut writer = PacketWriter::new(output);
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&PRE_SKIP.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family
        writer.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)?;
        let mut tags = b"OpusTags".to_vec();
        let vendor_len = u32::try_from(vendor.len()).unwrap_or(0);
        tags.extend_from_slice(&vendor_len.to_le_bytes());
        tags.extend_from_slice(&vendor.as_bytes()[..vendor_len as usize]);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        writer.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(Self { writer, serial, pending: None, first_index: None, written: 0 })
    }

    /// Adds the packet of mix frame `index` (frames that never came are skipped in time).
    pub fn push(&mut self, packet: Vec<u8>, index: u64) -> std::io::Result<()> {
        let first = *self.first_index.get_or_insert(index);
        if index < first {
            return Ok(());
        }
        if let Some(previous) = self.pending.replace((packet, index)) {
            self.write(previous, PacketWriteEndInfo::NormalPacket)?;
        }
        Ok(())
    }

    /// Writes the last packet with the end-of-stream mark and returns the output, flushed.
    pub fn finish(mut self) -> std::io::Result<W> {
        if let Some(last) = self.pending.take() {
            self.write(last, PacketWriteEndInfo::EndStream)?;
        }
        let mut output = self.writer.into_inner();
        output.flush()?;
        Ok(output)
    }

    /// Seconds of audio written so far.
    pub fn seconds(&self) -> f64 {
        self.written as f64 * PACKET_SAMPLES as f64 / 48_000.0
    }

    fn write(
        &mut self,
        (packet, index): (Vec<u8>, u64),
        end: PacketWriteEndInfo,
    ) -> std::io::Result<()> {
        let first = self.first_index.unwrap_or(index);
        let granule = (index - first + 1) * PACKET_SAMPLES;
        self.written += 1;
        let end = match end {
            PacketWriteEndInfo::NormalPacket if self.written.is_multiple_of(PACKETS_PER_PAGE) => {
                PacketWriteEndInfo::EndPage
            }
            other => other,
        };
        self.writer.write_packet(packet, self.serial, end, granule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_reads_back_with_its_headers_granules_and_end() {
        let mut writer = OggOpusWriter::new(Vec::new(), 7, "rdv").unwrap();
        for index in 100..=220u64 {
            writer.push(vec![0xf8, 0xff, 0xfe, index as u8], index).unwrap();
        }
        assert!((writer.seconds() - 2.4).abs() < 1e-9, "{}", writer.seconds());
        let bytes = writer.finish().unwrap();
        let mut reader = ogg::reading::PacketReader::new(std::io::Cursor::new(bytes));
        let head = reader.read_packet().unwrap().unwrap();
        assert!(head.data.starts_with(b"OpusHead") && head.first_in_stream());
        assert_eq!(reader.read_packet().unwrap().unwrap().data[..8], *b"OpusTags");
        let mut last = None;
        let mut count = 0;
        while let Some(packet) = reader.read_packet().unwrap() {
            count += 1;
            last = Some(packet);
        }
        let last = last.unwrap();
        assert_eq!(count, 121);
        assert!(last.last_in_stream());
        assert_eq!(last.absgp_page(), 121 * 960);
    }
}
