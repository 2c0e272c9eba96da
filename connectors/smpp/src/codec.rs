//! Framing of PDUs on a byte stream for tokio-util's `Framed`: a frame is command_length
//! octets. A frame whose body cannot be decoded is handed up as [`Frame::Bad`] (the session
//! answers it with a generic_nack and keeps the bind); only an impossible command_length ends
//! the connection.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::pdu::{HEADER_LEN, Header, Pdu, PduError};

/// The largest PDU accepted (SMPP has no limit; a message_payload TLV is at most 64 KiB).
pub const MAX_PDU_LEN: usize = 70_000;

/// One frame read from the SMSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Pdu(Pdu),
    /// A frame with a valid header whose body is not a PDU we can read.
    Bad {
        header: Header,
        error: PduError,
    },
}

/// The PDU codec.
#[derive(Debug, Default, Clone, Copy)]
pub struct SmppCodec;

impl Decoder for SmppCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if !(HEADER_LEN..=MAX_PDU_LEN).contains(&len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                PduError::Length(len as u32),
            ));
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let bytes = src.split_to(len);
        match Pdu::decode(&bytes) {
            Ok(pdu) => Ok(Some(Frame::Pdu(pdu))),
            Err(error) => {
                let mut h = &bytes[4..HEADER_LEN];
                let header = Header {
                    command_id: h.get_u32(),
                    command_status: h.get_u32(),
                    sequence_number: h.get_u32(),
                };
                Ok(Some(Frame::Bad { header, error }))
            }
        }
    }
}

impl Encoder<Pdu> for SmppCodec {
    type Error = std::io::Error;

    fn encode(&mut self, pdu: Pdu, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        pdu.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Body;

    #[test]
    fn frames_split_anywhere_decode_once_complete() {
        let mut all = BytesMut::new();
        Pdu::new(1, 0, Body::EnquireLink).encode(&mut all);
        Pdu::new(
            2,
            0,
            Body::SubmitSmResp {
                message_id: "42".into(),
            },
        )
        .encode(&mut all);
        let mut codec = SmppCodec;
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in all.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(frame) = codec.decode(&mut buf).expect("valid") {
                got.push(frame);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], Frame::Pdu(p) if p.header.sequence_number == 2));
    }

    #[test]
    fn a_bad_body_is_a_frame_and_a_bad_length_an_error() {
        let mut codec = SmppCodec;
        let mut buf = BytesMut::from(
            &[
                0u8, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4,
            ][..],
        );
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Frame::Bad { header, .. })) if header.sequence_number == 5
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3][..]);
        assert!(codec.decode(&mut buf).is_err());
    }
}
