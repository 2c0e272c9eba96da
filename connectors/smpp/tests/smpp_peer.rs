//! Things the npm simulator cannot script, from a peer written with this crate's own codec:
//! malformed and unknown PDUs, a generic_nack for a submit, mobile-originated and unreadable
//! deliver_sm, and an unbind from the SMSC (the sender binds again).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Reports, message, settings};
use futures::{SinkExt, StreamExt};
use switchyard_smpp::codec::{Frame, SmppCodec};
use switchyard_smpp::pdu::{Body, Pdu, ShortMessage, id};
use switchyard_smpp::{Class, MemoryIndex, SmppSender, SubmitOutcome};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

type Peer = Framed<tokio::net::TcpStream, SmppCodec>;

async fn next_pdu(peer: &mut Peer) -> Pdu {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), peer.next())
            .await
            .expect("a PDU in time")
            .expect("connection open")
            .expect("a frame");
        match frame {
            Frame::Pdu(pdu) if pdu.body == Body::EnquireLink => {
                let seq = pdu.header.sequence_number;
                peer.send(Pdu::new(seq, 0, Body::EnquireLinkResp))
                    .await
                    .unwrap();
            }
            Frame::Pdu(pdu) => return pdu,
            Frame::Bad { header, error } => {
                panic!("the sender wrote a bad PDU {header:?}: {error}")
            }
        }
    }
}

async fn accept_bind(listener: &TcpListener) -> Peer {
    let (stream, _) = listener.accept().await.unwrap();
    let mut peer = Framed::new(stream, SmppCodec);
    let bind = next_pdu(&mut peer).await;
    assert!(matches!(bind.body, Body::BindTransceiver(_)), "{bind:?}");
    let mut resp = Pdu::new(
        bind.header.sequence_number,
        0,
        Body::BindResp {
            system_id: "peer".into(),
        },
    );
    resp.header.command_id = id::BIND_TRANSCEIVER | id::RESP;
    peer.send(resp).await.unwrap();
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_pdus_get_answers_and_an_smsc_unbind_is_followed_by_a_new_bind() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reports = Reports::new();
    let sender = Arc::new(
        SmppSender::start(
            settings(port),
            Arc::new(MemoryIndex::default()),
            reports.clone(),
        )
        .unwrap(),
    );
    let mut peer = accept_bind(&listener).await;

    // A generic_nack for a submit: refused, not taken; another sender may take it.
    let submitting = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.submit(message(1)).await })
    };
    let submit = next_pdu(&mut peer).await;
    assert!(matches!(&submit.body, Body::SubmitSm(m) if m.destination_addr == message(1).to));
    peer.send(Pdu::new(
        submit.header.sequence_number,
        0x08,
        Body::GenericNack,
    ))
    .await
    .unwrap();
    let outcome = submitting.await.unwrap();
    assert!(
        matches!(
            outcome,
            SubmitOutcome::Failed {
                class: Class::TryAnotherSender,
                ..
            }
        ),
        "{outcome:?}"
    );

    // A mobile-originated message is acknowledged (and not reported).
    let mo = ShortMessage {
        source_addr: "01011112222".into(),
        short_message: b"hello".to_vec(),
        ..ShortMessage::default()
    };
    peer.send(Pdu::new(100, 0, Body::DeliverSm(mo)))
        .await
        .unwrap();
    let resp = next_pdu(&mut peer).await;
    assert_eq!(
        (resp.header.sequence_number, resp.header.command_status),
        (100, 0)
    );
    assert_eq!(resp.body, Body::DeliverSmResp);

    // A receipt without an id cannot be read: a permanent application error.
    let unreadable = ShortMessage {
        esm_class: 0x04,
        short_message: b"stat:DELIVRD".to_vec(),
        ..ShortMessage::default()
    };
    peer.send(Pdu::new(101, 0, Body::DeliverSm(unreadable)))
        .await
        .unwrap();
    let resp = next_pdu(&mut peer).await;
    assert_eq!(
        (resp.header.sequence_number, resp.header.command_status),
        (101, 0x65)
    );

    // A deliver_sm whose body is cut short: generic_nack, and the bind stays.
    let cut: [u8; 20] = [
        0, 0, 0, 20, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 102, b'x', b'y', b'z', b'w',
    ];
    tokio::io::AsyncWriteExt::write_all(peer.get_mut(), &cut)
        .await
        .unwrap();
    let nack = next_pdu(&mut peer).await;
    assert_eq!(nack.body, Body::GenericNack);
    assert_eq!(nack.header.sequence_number, 102);

    // A command we do not speak: generic_nack ESME_RINVCMDID.
    let mut data_sm = Pdu::new(103, 0, Body::Other(vec![1, 2, 3]));
    data_sm.header.command_id = 0x0000_0103;
    peer.send(data_sm).await.unwrap();
    let nack = next_pdu(&mut peer).await;
    assert_eq!(nack.body, Body::GenericNack);
    assert_eq!(
        (nack.header.sequence_number, nack.header.command_status),
        (103, 3)
    );

    // The SMSC unbinds: answered, and the sender binds again.
    peer.send(Pdu::new(104, 0, Body::Unbind)).await.unwrap();
    let resp = next_pdu(&mut peer).await;
    assert_eq!(
        (resp.body, resp.header.sequence_number),
        (Body::UnbindResp, 104)
    );
    let mut peer = tokio::time::timeout(Duration::from_secs(5), accept_bind(&listener))
        .await
        .expect("a new bind");
    let submitting = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.submit(message(2)).await })
    };
    let submit = next_pdu(&mut peer).await;
    peer.send(Pdu::new(
        submit.header.sequence_number,
        0,
        Body::SubmitSmResp {
            message_id: "abc".into(),
        },
    ))
    .await
    .unwrap();
    assert_eq!(submitting.await.unwrap().carrier_id(), Some("abc"));
    assert_eq!(reports.len(), 0);
}
