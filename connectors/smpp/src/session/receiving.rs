//! The receiving side of a link: deliver_sm receipts matched to their messages (recent ids,
//! the index, ambiguous submits, or held until their submit_sm_resp), reports written through
//! the sink, and only then the deliver_sm_resp.

use super::*;

impl Link {
    pub(super) fn notify(&mut self, notice: Notice) {
        if self.role.receives() {
            self.apply_notice(notice);
        } else if let Some(tx) = &self.notices_out {
            let _ = tx.send(notice);
        }
    }

    pub(super) fn apply_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Accepted {
                carrier_id,
                context,
            } => {
                for (receipt, (generation, seq)) in
                    self.early.take_matching(&carrier_id, &context.to)
                {
                    tracing::debug!(carrier_id = %receipt.carrier_id.0, "held receipt matched its submit_sm_resp");
                    let report = receipt_report(&receipt, context.clone());
                    self.spawn_write(Some((generation, seq)), report, None);
                }
                self.recent.insert(&carrier_id, context);
            }
            Notice::Ambiguous { context, text } => {
                self.ambiguous.add(context, text, Instant::now())
            }
            Notice::Resolved { message_id, part } => {
                self.ambiguous.resolved(&message_id, part);
            }
        }
    }

    pub(super) async fn on_deliver(
        &mut self,
        conn: &mut Conn,
        seq: u32,
        deliver: ShortMessage,
    ) -> Step<()> {
        match parse(&deliver) {
            None => {
                tracing::info!(from = %deliver.source_addr, "mobile-originated deliver_sm acknowledged (not handled)");
                respond(conn, seq, status::ESME_ROK).await
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "unreadable receipt refused");
                respond(conn, seq, status::ESME_RX_P_APPN).await
            }
            Some(Ok(receipt)) => {
                let form = self.settings.receipt_id_form;
                if let Some(context) = self.recent.find(&receipt, form) {
                    let report = receipt_report(&receipt, context);
                    self.spawn_write(Some((self.generation, seq)), report, None);
                    return Ok(());
                }
                let index = self.index.clone();
                let limit = self.settings.submit_timeout();
                let generation = self.generation;
                self.pending.push(Box::pin(async move {
                    let found = bounded(limit, lookup(index.as_ref(), &receipt, form)).await;
                    Done::Lookup {
                        generation,
                        seq,
                        receipt,
                        found,
                    }
                }));
                Ok(())
            }
        }
    }

    /// A receipt no index knows may settle an ambiguous submit; its carrier id is then stored
    /// like an accepted one, so the message's later receipts match by id.
    fn reconcile_ambiguous(&mut self, receipt: &Receipt) -> Option<MessageContext> {
        let context = self.ambiguous.reconcile(receipt)?;
        tracing::info!(message_id = %context.message_id, carrier_id = %receipt.carrier_id.0, "ambiguous submit reconciled by its receipt");
        let carrier_id = receipt.carrier_id.clone();
        self.recent.insert(&carrier_id, context.clone());
        let index = self.index.clone();
        let limit = self.settings.submit_timeout();
        let stored = context.clone();
        self.pending.push(Box::pin(async move {
            let keys = carrier_id.keys();
            let error = bounded(limit, index.put(&keys, &stored)).await.err();
            Done::LatePut {
                carrier_id,
                context: stored,
                error,
            }
        }));
        Some(context)
    }

    pub(super) fn spawn_write(
        &mut self,
        answer: Option<(u64, u32)>,
        report: ReceiptReport,
        unknown: Option<Unreconciled>,
    ) {
        let sink = self.sink.clone();
        let generation = answer.map(|(g, _)| g).unwrap_or(self.generation);
        let seq = answer.map(|(_, s)| s);
        self.pending.push(Box::pin(async move {
            let result = sink.write(report).await;
            Done::Written {
                generation,
                seq,
                result,
                unknown,
            }
        }));
    }

    pub(super) async fn on_done(&mut self, mut conn: Option<&mut Conn>, done: Done) -> Step<()> {
        match done {
            Done::Put {
                job,
                part,
                carrier_id,
                context,
                error,
            } => {
                if let Some(e) = error {
                    tracing::error!(message_id = %context.message_id, error = %e, "carrier id not stored: a receipt after a restart will not match");
                }
                if let Some(a) = self.active.get_mut(&job)
                    && let Some(PartState::Accepted { stored, .. }) = a.states.get_mut(part)
                {
                    *stored = true;
                }
                self.notify(Notice::Accepted {
                    carrier_id,
                    context,
                });
                self.check_job(job);
            }
            Done::LatePut {
                carrier_id,
                context,
                error,
            } => {
                if let Some(e) = error {
                    tracing::error!(message_id = %context.message_id, error = %e, "late carrier id not stored");
                }
                self.notify(Notice::Accepted {
                    carrier_id,
                    context,
                });
            }
            Done::Lookup {
                generation,
                seq,
                receipt,
                found,
            } => {
                let context = match found {
                    Ok(Some(context)) => Some(context),
                    Ok(None) => match self.recent.find(&receipt, self.settings.receipt_id_form) {
                        Some(context) => Some(context),
                        None => self.reconcile_ambiguous(&receipt),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "receipt index unavailable: receipt answered with a temporary error");
                        if let Some(conn) = conn.as_deref_mut()
                            && generation == self.generation
                        {
                            respond(conn, seq, status::ESME_RX_T_APPN).await?;
                        }
                        return Ok(());
                    }
                };
                match context {
                    Some(context) => {
                        let report = receipt_report(&receipt, context);
                        self.spawn_write(Some((generation, seq)), report, None);
                    }
                    None if generation == self.generation => {
                        tracing::debug!(carrier_id = %receipt.carrier_id.0, "receipt before its submit_sm_resp: held");
                        if let Err((full, _)) =
                            self.early.hold(receipt, (generation, seq), Instant::now())
                        {
                            tracing::warn!(error = %full, "receipt answered with a temporary error");
                            if let Some(conn) = conn.as_deref_mut() {
                                respond(conn, seq, status::ESME_RX_T_APPN).await?;
                            }
                        }
                    }
                    None => {}
                }
            }
            Done::Written {
                generation,
                seq,
                result,
                unknown,
            } => {
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "report not written");
                }
                if let (Some(seq), Some(conn)) = (seq, conn)
                    && generation == self.generation
                {
                    let st = if result.is_ok() {
                        status::ESME_ROK
                    } else {
                        status::ESME_RX_T_APPN
                    };
                    respond(conn, seq, st).await?;
                }
                if let (Err(_), Some(mut u)) = (result, unknown) {
                    u.until = Instant::now() + self.settings.throttle_pause();
                    self.ambiguous.retry_later(u);
                }
            }
        }
        Ok(())
    }
}

/// The report of a receipt about `context`.
fn receipt_report(receipt: &Receipt, context: MessageContext) -> ReceiptReport {
    let (status, result_code, result_text) = receipt_result(&receipt.stat);
    let carrier_code = match &receipt.err {
        Some(err) => format!("{} err:{err}", receipt.stat),
        None => receipt.stat.clone(),
    };
    ReceiptReport {
        kind: ReportKind::Receipt,
        context,
        carrier_id: Some(receipt.carrier_id.0.clone()),
        status,
        result_code,
        result_text,
        carrier_code,
    }
}

/// Find the context of `receipt` in the index, by the carrier-id rule.
async fn lookup(
    index: &dyn ReceiptIndex,
    receipt: &Receipt,
    form: crate::receipts::IdForm,
) -> Result<Option<MessageContext>, IndexError> {
    for key in receipt.carrier_id.lookup_keys(form) {
        if let Some(context) = index.get(&key).await?
            && crate::receipts::same_recipient(&context.to, &receipt.recipient)
        {
            return Ok(Some(context));
        }
    }
    Ok(None)
}
