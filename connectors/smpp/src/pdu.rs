//! The SMPP 3.4 PDUs this connector speaks, and their byte encoding (pure, no I/O).
//!
//! Only what an ESME needs: bind_transceiver/transmitter/receiver (+ resp), submit_sm (+ resp),
//! deliver_sm (+ resp), enquire_link (+ resp), unbind (+ resp) and generic_nack. Anything else
//! decodes as [`Body::Other`] so the session can answer it with a generic_nack. Decoding never
//! panics: bad input is a [`PduError`].

use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;

/// command_id values.
pub mod id {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_RECEIVER: u32 = 0x0000_0001;
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    /// The bit set in every response's command_id.
    pub const RESP: u32 = 0x8000_0000;
}

/// command_status values this connector names.
pub mod status {
    pub const ESME_ROK: u32 = 0x0000_0000;
    pub const ESME_RINVCMDID: u32 = 0x0000_0003;
    pub const ESME_RSYSERR: u32 = 0x0000_0008;
    pub const ESME_RX_T_APPN: u32 = 0x0000_0064;
    pub const ESME_RX_P_APPN: u32 = 0x0000_0065;
}

/// TLV tags this connector reads or writes.
pub mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
}

/// Every PDU starts with these 16 octets.
pub const HEADER_LEN: usize = 16;

/// interface_version sent in binds: SMPP 3.4.
pub const INTERFACE_VERSION: u8 = 0x34;

/// Why bytes are not a PDU. Retrying the same bytes never helps.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PduError {
    #[error("command_length {0} is out of range")]
    Length(u32),
    #[error("the PDU ended inside field {0}")]
    Truncated(&'static str),
    #[error("field {field} has no NUL within {max} octets")]
    Unterminated { field: &'static str, max: usize },
    #[error("field {0} is not ASCII/Latin text")]
    NotText(&'static str),
    #[error("field {field} is {len} octets, at most {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl PduError {
    /// Never: the same bytes decode the same way.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The fixed header of a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

/// An optional parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

/// The body of the three bind requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

impl std::fmt::Debug for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bind")
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("system_type", &self.system_type)
            .finish_non_exhaustive()
    }
}

/// submit_sm and deliver_sm share this layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortMessage {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl ShortMessage {
    /// The value of the first TLV with `tag`.
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value.as_slice())
    }
}

/// What a PDU carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    BindTransceiver(Bind),
    BindTransmitter(Bind),
    BindReceiver(Bind),
    /// Any of the three bind responses; `system_id` is empty when the SMSC sent no body.
    BindResp {
        system_id: String,
    },
    SubmitSm(ShortMessage),
    /// `message_id` is empty when the SMSC sent no body (usual with an error status).
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
    /// A command this connector does not speak; its body is kept as it came.
    Other(Vec<u8>),
}

impl Body {
    /// The command_id of this body (`bind_resp` needs the request's id: see [`bind_resp_id`]).
    fn command_id(&self) -> u32 {
        match self {
            Body::BindTransceiver(_) => id::BIND_TRANSCEIVER,
            Body::BindTransmitter(_) => id::BIND_TRANSMITTER,
            Body::BindReceiver(_) => id::BIND_RECEIVER,
            Body::BindResp { .. } => id::BIND_TRANSCEIVER | id::RESP,
            Body::SubmitSm(_) => id::SUBMIT_SM,
            Body::SubmitSmResp { .. } => id::SUBMIT_SM | id::RESP,
            Body::DeliverSm(_) => id::DELIVER_SM,
            Body::DeliverSmResp => id::DELIVER_SM | id::RESP,
            Body::EnquireLink => id::ENQUIRE_LINK,
            Body::EnquireLinkResp => id::ENQUIRE_LINK | id::RESP,
            Body::Unbind => id::UNBIND,
            Body::UnbindResp => id::UNBIND | id::RESP,
            Body::GenericNack => id::GENERIC_NACK,
            Body::Other(_) => 0,
        }
    }
}

/// The response id of a bind request id.
pub fn bind_resp_id(request_id: u32) -> u32 {
    request_id | id::RESP
}

/// One PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub header: Header,
    pub body: Body,
}

impl Pdu {
    /// A request or response with status 0 (or `status` for responses), command_id from `body`.
    pub fn new(sequence_number: u32, command_status: u32, body: Body) -> Self {
        Pdu {
            header: Header {
                command_id: body.command_id(),
                command_status,
                sequence_number,
            },
            body,
        }
    }

    /// Append the encoded PDU to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u32(0); // length, patched below
        out.put_u32(self.header.command_id);
        out.put_u32(self.header.command_status);
        out.put_u32(self.header.sequence_number);
        match &self.body {
            Body::BindTransceiver(b) | Body::BindTransmitter(b) | Body::BindReceiver(b) => {
                put_cstr(out, &b.system_id);
                put_cstr(out, &b.password);
                put_cstr(out, &b.system_type);
                out.put_u8(INTERFACE_VERSION);
                out.put_u8(b.addr_ton);
                out.put_u8(b.addr_npi);
                put_cstr(out, &b.address_range);
            }
            Body::BindResp { system_id } => put_cstr(out, system_id),
            Body::SubmitSm(m) | Body::DeliverSm(m) => encode_short_message(out, m),
            Body::SubmitSmResp { message_id } => put_cstr(out, message_id),
            Body::DeliverSmResp => put_cstr(out, ""),
            Body::Other(bytes) => out.put_slice(bytes),
            Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::Unbind
            | Body::UnbindResp
            | Body::GenericNack => {}
        }
        let len = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Decode one whole PDU (`bytes` starts with command_length and holds exactly it).
    pub fn decode(bytes: &[u8]) -> Result<Pdu, PduError> {
        let mut r = Reader { bytes, field: "" };
        let len = r.u32("command_length")?;
        if (len as usize) != bytes.len() || (len as usize) < HEADER_LEN {
            return Err(PduError::Length(len));
        }
        let header = Header {
            command_id: r.u32("command_id")?,
            command_status: r.u32("command_status")?,
            sequence_number: r.u32("sequence_number")?,
        };
        let body = decode_body(header.command_id, &mut r)?;
        Ok(Pdu { header, body })
    }
}

fn decode_body(command_id: u32, r: &mut Reader<'_>) -> Result<Body, PduError> {
    Ok(match command_id {
        id::BIND_TRANSCEIVER | id::BIND_TRANSMITTER | id::BIND_RECEIVER => {
            let bind = Bind {
                system_id: r.cstr("system_id", 16)?,
                password: r.cstr("password", 9)?,
                system_type: r.cstr("system_type", 13)?,
                addr_ton: {
                    r.u8("interface_version")?;
                    r.u8("addr_ton")?
                },
                addr_npi: r.u8("addr_npi")?,
                address_range: r.cstr("address_range", 41)?,
            };
            match command_id {
                id::BIND_TRANSCEIVER => Body::BindTransceiver(bind),
                id::BIND_TRANSMITTER => Body::BindTransmitter(bind),
                _ => Body::BindReceiver(bind),
            }
        }
        c if c == id::BIND_TRANSCEIVER | id::RESP
            || c == id::BIND_TRANSMITTER | id::RESP
            || c == id::BIND_RECEIVER | id::RESP =>
        {
            // An error response may come without a body; TLVs after system_id are ignored.
            let system_id = if r.is_empty() {
                String::new()
            } else {
                r.cstr("system_id", 16)?
            };
            Body::BindResp { system_id }
        }
        id::SUBMIT_SM => Body::SubmitSm(decode_short_message(r)?),
        id::DELIVER_SM => Body::DeliverSm(decode_short_message(r)?),
        c if c == id::SUBMIT_SM | id::RESP => {
            let message_id = if r.is_empty() {
                String::new()
            } else {
                r.cstr("message_id", 65)?
            };
            Body::SubmitSmResp { message_id }
        }
        c if c == id::DELIVER_SM | id::RESP => Body::DeliverSmResp,
        id::ENQUIRE_LINK => Body::EnquireLink,
        c if c == id::ENQUIRE_LINK | id::RESP => Body::EnquireLinkResp,
        id::UNBIND => Body::Unbind,
        c if c == id::UNBIND | id::RESP => Body::UnbindResp,
        id::GENERIC_NACK => Body::GenericNack,
        _ => Body::Other(r.rest().to_vec()),
    })
}

fn encode_short_message(out: &mut BytesMut, m: &ShortMessage) {
    put_cstr(out, &m.service_type);
    out.put_u8(m.source_addr_ton);
    out.put_u8(m.source_addr_npi);
    put_cstr(out, &m.source_addr);
    out.put_u8(m.dest_addr_ton);
    out.put_u8(m.dest_addr_npi);
    put_cstr(out, &m.destination_addr);
    out.put_u8(m.esm_class);
    out.put_u8(m.protocol_id);
    out.put_u8(m.priority_flag);
    put_cstr(out, &m.schedule_delivery_time);
    put_cstr(out, &m.validity_period);
    out.put_u8(m.registered_delivery);
    out.put_u8(m.replace_if_present_flag);
    out.put_u8(m.data_coding);
    out.put_u8(m.sm_default_msg_id);
    // sm_length is one octet: the encoder in `encoding.rs` never builds more than 254.
    let sm = &m.short_message[..m.short_message.len().min(254)];
    out.put_u8(sm.len() as u8);
    out.put_slice(sm);
    for tlv in &m.tlvs {
        out.put_u16(tlv.tag);
        out.put_u16(tlv.value.len().min(u16::MAX as usize) as u16);
        out.put_slice(&tlv.value[..tlv.value.len().min(u16::MAX as usize)]);
    }
}

fn decode_short_message(r: &mut Reader<'_>) -> Result<ShortMessage, PduError> {
    let mut m = ShortMessage {
        service_type: r.cstr("service_type", 6)?,
        source_addr_ton: r.u8("source_addr_ton")?,
        source_addr_npi: r.u8("source_addr_npi")?,
        source_addr: r.cstr("source_addr", 21)?,
        dest_addr_ton: r.u8("dest_addr_ton")?,
        dest_addr_npi: r.u8("dest_addr_npi")?,
        destination_addr: r.cstr("destination_addr", 21)?,
        esm_class: r.u8("esm_class")?,
        protocol_id: r.u8("protocol_id")?,
        priority_flag: r.u8("priority_flag")?,
        schedule_delivery_time: r.cstr("schedule_delivery_time", 17)?,
        validity_period: r.cstr("validity_period", 17)?,
        registered_delivery: r.u8("registered_delivery")?,
        replace_if_present_flag: r.u8("replace_if_present_flag")?,
        data_coding: r.u8("data_coding")?,
        sm_default_msg_id: r.u8("sm_default_msg_id")?,
        short_message: Vec::new(),
        tlvs: Vec::new(),
    };
    let sm_length = r.u8("sm_length")? as usize;
    m.short_message = r.take("short_message", sm_length)?.to_vec();
    while !r.is_empty() {
        let tag = r.u16("tlv tag")?;
        let len = r.u16("tlv length")? as usize;
        let value = r.take("tlv value", len)?.to_vec();
        m.tlvs.push(Tlv { tag, value });
    }
    Ok(m)
}

/// Write `s` as a C-octet string (non-ASCII characters become '?': every field this connector
/// writes as a C string is an address, an id or a time, all ASCII).
fn put_cstr(out: &mut BytesMut, s: &str) {
    for c in s.chars() {
        out.put_u8(if c.is_ascii() && c != '\0' {
            c as u8
        } else {
            b'?'
        });
    }
    out.put_u8(0);
}

struct Reader<'a> {
    bytes: &'a [u8],
    field: &'static str,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], PduError> {
        self.field = field;
        if self.bytes.len() < n {
            return Err(PduError::Truncated(field));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(field, 1)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, PduError> {
        let mut b = self.take(field, 2)?;
        Ok(b.get_u16())
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PduError> {
        let mut b = self.take(field, 4)?;
        Ok(b.get_u32())
    }

    /// A C-octet string of at most `max` octets including its NUL.
    fn cstr(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        let Some(nul) = self.bytes.iter().position(|&b| b == 0) else {
            return Err(if self.bytes.len() >= max {
                PduError::Unterminated { field, max }
            } else {
                PduError::Truncated(field)
            });
        };
        if nul + 1 > max {
            return Err(PduError::TooLong {
                field,
                len: nul + 1,
                max,
            });
        }
        let text = self.take(field, nul + 1)?;
        // Latin-1 decoding never fails, so odd carrier ids still compare.
        Ok(text[..nul].iter().map(|&b| b as char).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(pdu: Pdu) {
        let mut out = BytesMut::new();
        pdu.encode(&mut out);
        assert_eq!(Pdu::decode(&out), Ok(pdu));
    }

    #[test]
    fn every_body_round_trips() {
        let bind = Bind {
            system_id: "sys".into(),
            password: "pw".into(),
            system_type: "".into(),
            addr_ton: 1,
            addr_npi: 1,
            address_range: "".into(),
        };
        let sm = ShortMessage {
            source_addr: "1234".into(),
            destination_addr: "01012345678".into(),
            registered_delivery: 1,
            data_coding: 8,
            short_message: vec![0, 0x41],
            tlvs: vec![Tlv {
                tag: tag::MESSAGE_PAYLOAD,
                value: vec![1, 2, 3],
            }],
            ..ShortMessage::default()
        };
        for body in [
            Body::BindTransceiver(bind.clone()),
            Body::BindTransmitter(bind.clone()),
            Body::BindReceiver(bind),
            Body::SubmitSm(sm.clone()),
            Body::DeliverSm(sm),
            Body::SubmitSmResp {
                message_id: "1A2B".into(),
            },
            Body::DeliverSmResp,
            Body::EnquireLink,
            Body::EnquireLinkResp,
            Body::Unbind,
            Body::UnbindResp,
            Body::GenericNack,
        ] {
            roundtrip(Pdu::new(7, 0, body));
        }
    }

    #[test]
    fn a_known_enquire_link() {
        let mut out = BytesMut::new();
        Pdu::new(1, 0, Body::EnquireLink).encode(&mut out);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn error_responses_without_body() {
        let bytes = [0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 9];
        let pdu = Pdu::decode(&bytes).expect("decodes");
        assert_eq!(pdu.header.command_status, 0x58);
        assert_eq!(
            pdu.body,
            Body::SubmitSmResp {
                message_id: String::new()
            }
        );
    }

    #[test]
    fn truncated_and_unterminated_fields_are_errors() {
        let mut out = BytesMut::new();
        Pdu::new(
            3,
            0,
            Body::SubmitSm(ShortMessage {
                short_message: b"hello".to_vec(),
                ..ShortMessage::default()
            }),
        )
        .encode(&mut out);
        let cut = out.len() - 2;
        let mut bytes = out[..cut].to_vec();
        bytes[3] = cut as u8;
        assert_eq!(
            Pdu::decode(&bytes),
            Err(PduError::Truncated("short_message"))
        );
        let long = [
            &[0, 0, 0, 40, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9][..],
            &[b'x'; 24][..],
        ]
        .concat();
        assert!(matches!(
            Pdu::decode(&long),
            Err(PduError::Truncated("message_id"))
        ));
    }

    #[test]
    fn unknown_commands_are_kept() {
        let bytes = [0, 0, 0, 18, 0, 0, 0, 0x21, 0, 0, 0, 0, 0, 0, 0, 2, 9, 9];
        let pdu = Pdu::decode(&bytes).expect("decodes");
        assert_eq!(pdu.body, Body::Other(vec![9, 9]));
    }

    #[test]
    fn passwords_are_not_printed() {
        let bind = Bind {
            system_id: "sys".into(),
            password: "hunter2".into(),
            system_type: String::new(),
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        };
        assert!(!format!("{bind:?}").contains("hunter2"));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..300), id in proptest::prelude::any::<u8>()) {
            let len = bytes.len() as u32;
            bytes[..4].copy_from_slice(&len.to_be_bytes());
            let ids = [1u32, 2, 4, 5, 9, 0x15, 0x80000004, 0x80000009, 0x80000005];
            let command_id = ids[id as usize % ids.len()];
            bytes[4..8].copy_from_slice(&command_id.to_be_bytes());
            let _ = Pdu::decode(&bytes);
        }
    }
}
