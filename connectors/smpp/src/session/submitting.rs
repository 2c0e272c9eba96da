//! The submitting side of a link: jobs in, parts out within the window, responses classified
//! (accepted → index, throttled → pause and send again, refused → outcome, unanswered →
//! ambiguous).

use super::*;

impl Link {
    pub(super) fn accept_job(&mut self, job: Job) {
        let s = &self.settings;
        self.concat_ref = self.concat_ref.wrapping_add(1);
        let parts = match encode(
            &job.message.text,
            s.data_coding,
            s.long_text,
            self.concat_ref,
        ) {
            Ok(parts) => parts,
            Err(e) => {
                let _ = job.reply.send(crate::sender::SubmitOutcome::Failed {
                    class: Class::Permanent,
                    code: Class::Permanent.result_code(),
                    detail: e.to_string(),
                });
                return;
            }
        };
        let id = self.next_job;
        self.next_job += 1;
        let active = Active::new(job, parts);
        for part in 0..active.parts.len() {
            self.send_queue.push_back((id, part));
        }
        self.active.insert(id, active);
    }

    /// Fail the submits that waited longer than `bind_wait` for a bind and were never sent.
    pub(super) fn fail_stale_jobs(&mut self, now: Instant) {
        let wait = self.settings.bind_wait();
        let stale: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| !a.sent_any() && a.created + wait <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(a) = self.active.get_mut(&id) {
                a.refuse(0, Class::TryAnotherSender, status::ESME_RSYSERR);
            }
            self.send_queue.retain(|(job, _)| *job != id);
            tracing::info!(
                role = self.role.name(),
                "submit failed: no bind within bind_wait_ms"
            );
            self.check_job(id);
        }
    }

    pub(super) fn stale_deadline(&self) -> Option<Instant> {
        let wait = self.settings.bind_wait();
        self.active
            .values()
            .filter(|a| !a.sent_any())
            .map(|a| a.created + wait)
            .min()
    }

    /// Send queued parts while the window has room and the bind is not paused.
    pub(super) async fn pump(&mut self, conn: &mut Conn) -> Step<()> {
        let mut sent = false;
        while conn.paused_until.is_none() && self.window.has_room() {
            let Some((job, part)) = self.send_queue.pop_front() else {
                break;
            };
            let Some(active) = self.active.get_mut(&job) else {
                continue;
            };
            if active.states.get(part) != Some(&PartState::Queued) {
                continue;
            }
            let pdu = submit_pdu(&self.settings, active, part);
            let seq = self.seq.allocate();
            active.states[part] = PartState::InFlight;
            if self.window.open(seq, (job, part), Instant::now()).is_err() {
                active.states[part] = PartState::Queued;
                self.send_queue.push_front((job, part));
                break;
            }
            conn.writer
                .feed(Pdu::new(seq, 0, Body::SubmitSm(pdu)))
                .await?;
            sent = true;
        }
        if sent {
            conn.writer.flush().await?;
        }
        Ok(())
    }

    pub(super) fn make_ambiguous(
        &mut self,
        job: u64,
        part: usize,
    ) -> Option<(MessageContext, String)> {
        let a = self.active.get_mut(&job)?;
        a.states[part] = PartState::Ambiguous;
        let context = a.context(part, now_millis());
        let text = a.parts[part].text.clone();
        tracing::warn!(message_id = %context.message_id, part = context.part, "submit ambiguous: not answered; waiting for a receipt");
        self.notify(Notice::Ambiguous {
            context: context.clone(),
            text: text.clone(),
        });
        self.check_job(job);
        Some((context, text))
    }

    pub(super) fn check_job(&mut self, job: u64) {
        let Some(outcome) = self.active.get(&job).and_then(Active::outcome) else {
            return;
        };
        if let Some(mut a) = self.active.remove(&job) {
            tracing::debug!(message_id = %a.message.message_id, ?outcome, "submit settled");
            if let Some(reply) = a.reply.take() {
                let _ = reply.send(outcome);
            }
        }
    }

    pub(super) fn on_submit_resp(
        &mut self,
        conn: &mut Conn,
        seq: u32,
        st: u32,
        message_id: String,
    ) {
        let now = Instant::now();
        if let Some((job, part)) = self.window.close(seq) {
            if st == status::ESME_ROK && message_id.trim().is_empty() {
                // Taken, but under no id we can match: only a receipt by recipient settles it.
                self.make_ambiguous(job, part);
                return;
            }
            let Some(a) = self.active.get_mut(&job) else {
                return;
            };
            if st == status::ESME_ROK {
                let carrier_id = CarrierId(message_id.trim().to_string());
                a.states[part] = PartState::Accepted {
                    carrier_id: carrier_id.0.clone(),
                    stored: false,
                };
                let context = a.context(part, now_millis());
                let index = self.index.clone();
                let limit = self.settings.submit_timeout();
                self.pending.push(Box::pin(async move {
                    let keys = carrier_id.keys();
                    let error = bounded(limit, index.put(&keys, &context)).await.err();
                    Done::Put {
                        job,
                        part,
                        carrier_id,
                        context,
                        error,
                    }
                }));
                return;
            }
            let class = classify(st);
            if class == Class::Throttled {
                a.throttles += 1;
                let pause = self.settings.throttle_pause();
                conn.paused_until = Some(now + pause);
                if let Some(tx) = &self.state {
                    tx.send_replace(BindState::Paused);
                }
                if a.throttles > self.settings.max_throttle_retries {
                    a.refuse(part, class, st);
                } else {
                    a.states[part] = PartState::Queued;
                    self.send_queue.push_front((job, part));
                    tracing::info!(message_id = %a.message.message_id, status = %status_name(st), pause_ms = pause.as_millis() as u64, "throttled: bind paused, submit queued again");
                    return;
                }
            } else {
                tracing::info!(message_id = %a.message.message_id, status = %status_name(st), ?class, "submit refused");
                a.refuse(part, class, st);
            }
            self.check_job(job);
        } else if let Some((context, text)) = self.timed_out.remove(&seq) {
            self.notify(Notice::Resolved {
                message_id: context.message_id.clone(),
                part: context.part,
            });
            if st == status::ESME_ROK && !message_id.trim().is_empty() {
                tracing::info!(message_id = %context.message_id, "late submit_sm_resp: ambiguous submit accepted");
                let carrier_id = CarrierId(message_id.trim().to_string());
                let index = self.index.clone();
                let limit = self.settings.submit_timeout();
                self.pending.push(Box::pin(async move {
                    let keys = carrier_id.keys();
                    let error = bounded(limit, index.put(&keys, &context)).await.err();
                    Done::LatePut {
                        carrier_id,
                        context,
                        error,
                    }
                }));
            } else if st != status::ESME_ROK {
                let class = classify(st);
                let report = ReceiptReport {
                    kind: ReportKind::LateRefusal,
                    context,
                    carrier_id: None,
                    status: switchyard_schemas::ResultStatus::Failed,
                    result_code: class.result_code(),
                    result_text: "the carrier refused the message after its deadline",
                    carrier_code: status_name(st),
                };
                self.spawn_write(None, report, None);
            } else {
                // Accepted without an id, late: back to waiting for a receipt by recipient.
                self.notify(Notice::Ambiguous { context, text });
            }
        } else {
            tracing::debug!(seq, "submit_sm_resp for no submit of ours");
        }
    }
}

/// The submit_sm of part `part`.
fn submit_pdu(s: &SmppSettings, a: &Active, part: usize) -> ShortMessage {
    let encoded = &a.parts[part];
    let mut tlvs = Vec::new();
    if let Some(payload) = &encoded.payload {
        tlvs.push(Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: payload.clone(),
        });
    }
    ShortMessage {
        service_type: String::new(),
        source_addr_ton: s.source_addr_ton,
        source_addr_npi: s.source_addr_npi,
        source_addr: a
            .message
            .from
            .clone()
            .unwrap_or_else(|| s.source_addr.clone()),
        dest_addr_ton: s.dest_addr_ton,
        dest_addr_npi: s.dest_addr_npi,
        destination_addr: a.message.to.clone(),
        esm_class: if encoded.udh { 0x40 } else { 0x00 },
        registered_delivery: u8::from(s.registered_delivery),
        data_coding: s.data_coding.value(),
        short_message: encoded.short_message.clone(),
        tlvs,
        ..ShortMessage::default()
    }
}
