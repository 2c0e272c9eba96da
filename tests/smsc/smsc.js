#!/usr/bin/env node
// An SMSC for switchyard's SMPP connector tests, on the npm `smpp` package's server (a peer
// nobody on the team wrote). Configured by environment variables (or --name=value arguments,
// same names in lower case without the SMSC_ prefix, e.g. --throttle-every=3):
//
//   SMSC_PORT            port to listen on (0 = any free port; default 2775). The first line
//                        on stdout is `LISTENING <port>`.
//   SMSC_SYSTEM_ID / SMSC_PASSWORD   credentials to accept (default: anything)
//   SMSC_REFUSE_BIND=1   refuse every bind with ESME_RBINDFAIL (0x0D)
//   SMSC_THROTTLE_EVERY=N  answer every Nth submit_sm with ESME_RTHROTTLED (0x58)
//   SMSC_DROP_AFTER=N    after answering N submit_sm, stop answering and drop the connection
//                        once SMSC_DROP_HELD (default 10) more have arrived (once per run);
//                        the unanswered ones were taken: their receipts come on the next bind
//   SMSC_RECEIPTS=tlv|text|none   receipt form (default tlv: receipted_message_id +
//                        message_state TLVs; text: only the `id:… stat:…` text)
//   SMSC_RECEIPT_ORDER=after|before   send the receipt after (default) or before the
//                        submit_sm_resp
//   SMSC_ID_BASE=dec|hex           message ids in submit_sm_resp (default dec)
//   SMSC_RECEIPT_ID_BASE=dec|hex   message ids in receipts (default: same as SMSC_ID_BASE)
//   SMSC_RECEIPT_STAT    receipt state (default DELIVRD); SMSC_RECEIPT_STATS=ENROUTE,DELIVRD
//                        sends one receipt per state, in order
//   SMSC_STATUS_FOR=prefix:status,…  answer submit_sm to destinations starting with prefix
//                        with that command_status (e.g. 0100:11 for ESME_RINVDSTADR)
//   SMSC_DELAY_MS        delay every submit_sm_resp by this much
//   SMSC_RECEIPT_DELAY_MS  send receipts this long after the submit_sm_resp (to whichever
//                        session takes receipts then; kept until one binds)
//   SMSC_RECEIPT_RETRY_MS  a receipt answered with an error status is sent again after this
//                        long (default 200), as SMSCs do
//   SMSC_LOG             file for the JSON-lines log (default stdout); one line per received
//                        submit_sm: {"event":"submit_sm","session":…,"seq":…,"dest":…,
//                        "text":…,"hex":…,"status":…,"message_id":…}, plus bind/drop events
'use strict';

const fs = require('fs');
const smpp = require('smpp');

function setting(name, fallback) {
  const flag = '--' + name.toLowerCase().replace(/_/g, '-') + '=';
  for (const arg of process.argv.slice(2)) {
    if (arg.startsWith(flag)) return arg.slice(flag.length);
  }
  const env = process.env['SMSC_' + name];
  return env === undefined || env === '' ? fallback : env;
}

const config = {
  port: Number(setting('PORT', '2775')),
  systemId: setting('SYSTEM_ID', null),
  password: setting('PASSWORD', null),
  refuseBind: setting('REFUSE_BIND', '0') === '1',
  throttleEvery: Number(setting('THROTTLE_EVERY', '0')),
  dropAfter: Number(setting('DROP_AFTER', '0')),
  dropHeld: Number(setting('DROP_HELD', '10')),
  receipts: setting('RECEIPTS', 'tlv'),
  receiptOrder: setting('RECEIPT_ORDER', 'after'),
  idBase: setting('ID_BASE', 'dec'),
  receiptIdBase: setting('RECEIPT_ID_BASE', setting('ID_BASE', 'dec')),
  receiptStats: String(setting('RECEIPT_STATS', setting('RECEIPT_STAT', 'DELIVRD'))).split(','),
  delayMs: Number(setting('DELAY_MS', '0')),
  statusFor: String(setting('STATUS_FOR', ''))
    .split(',')
    .filter((x) => x.includes(':'))
    .map((x) => [x.split(':')[0], Number(x.split(':')[1])]),
  receiptDelayMs: Number(setting('RECEIPT_DELAY_MS', '0')),
  receiptRetryMs: Number(setting('RECEIPT_RETRY_MS', '200')),
  log: setting('LOG', null),
};

// Synchronous writes: a test reads the log while the simulator runs, or right after killing it.
const logFd = config.log ? fs.openSync(config.log, 'a') : 1;
function log(event) {
  fs.writeSync(logFd, JSON.stringify(event) + '\n');
}

const STATES = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

let sessions = 0;
let submits = 0; // every submit_sm received
let answered = 0; // submit_sm answered ESME_ROK
let nextId = 0x6600;
let dropped = false;
let held = []; // taken but unanswered submits, before the drop
const receiptBound = new Set(); // sessions that take receipts
const pendingReceipts = []; // receipts waiting for a receiver bind

function formatId(n, base) {
  return base === 'hex' ? n.toString(16).toUpperCase() : String(n);
}

function smppDate(d) {
  const p = (x) => String(x).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function receiptPdu(n, pdu, stat) {
  const id = formatId(n, config.receiptIdBase);
  const now = smppDate(new Date());
  const text = pdu.short_message && typeof pdu.short_message.message === 'string' ? pdu.short_message.message.slice(0, 20) : '';
  const body = `id:${id} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:${stat} err:000 text:${text}`;
  const options = {
    source_addr_ton: pdu.dest_addr_ton,
    source_addr_npi: pdu.dest_addr_npi,
    source_addr: pdu.destination_addr,
    dest_addr_ton: pdu.source_addr_ton,
    dest_addr_npi: pdu.source_addr_npi,
    destination_addr: pdu.source_addr,
    esm_class: 0x04,
    data_coding: 0,
    short_message: Buffer.from(body, 'latin1'),
  };
  if (config.receipts === 'tlv') {
    options.receipted_message_id = id;
    options.message_state = STATES[stat] || 7;
  }
  return new smpp.PDU('deliver_sm', options);
}

function sendReceipt(n, pdu) {
  for (const stat of config.receiptStats) sendOneReceipt(n, pdu, stat);
}

function sendOneReceipt(n, pdu, stat) {
  if (config.receipts === 'none') return;
  const deliver = (session) => {
    session.send(receiptPdu(n, pdu, stat), (resp) => {
      log({ event: 'deliver_sm_resp', n, stat, status: resp.command_status });
      if (resp.command_status !== 0) setTimeout(() => sendOneReceipt(n, pdu, stat), config.receiptRetryMs);
    });
  };
  for (const session of receiptBound) {
    deliver(session);
    return;
  }
  pendingReceipts.push(deliver);
}

function flushPendingReceipts(session) {
  while (pendingReceipts.length > 0) pendingReceipts.shift()(session);
}

const server = smpp.createServer((session) => {
  const id = ++sessions;
  let open = true;
  session.on('close', () => {
    open = false;
    receiptBound.delete(session);
    log({ event: 'close', session: id });
  });
  session.on('error', (e) => log({ event: 'error', session: id, error: String(e && e.message) }));

  function bind(kind, takesReceipts) {
    session.on(kind, (pdu) => {
      const wrong = (config.systemId && pdu.system_id !== config.systemId) || (config.password && pdu.password !== config.password);
      if (config.refuseBind || wrong) {
        log({ event: 'bind_refused', session: id, kind, system_id: pdu.system_id });
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
        return;
      }
      log({ event: 'bind', session: id, kind, system_id: pdu.system_id });
      session.send(pdu.response({ system_id: 'smsc-sim' }));
      if (takesReceipts) {
        receiptBound.add(session);
        flushPendingReceipts(session);
      }
    });
  }
  bind('bind_transceiver', true);
  bind('bind_transmitter', false);
  bind('bind_receiver', true);

  session.on('enquire_link', (pdu) => {
    log({ event: 'enquire_link', session: id, t: Date.now() });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    log({ event: 'unbind', session: id });
    session.send(pdu.response());
    session.close();
  });
  session.on('deliver_sm_resp', () => {});

  session.on('submit_sm', (pdu) => {
    submits += 1;
    const message = pdu.short_message || {};
    const raw = Buffer.isBuffer(message.message) ? message.message : null;
    const text = typeof message.message === 'string' ? message.message : null;
    const entry = {
      event: 'submit_sm',
      t: Date.now(),
      session: id,
      seq: pdu.sequence_number,
      dest: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      udh: message.udh ? message.udh.map((u) => u.toString('hex')) : undefined,
      text,
      hex: raw ? raw.toString('hex') : undefined,
      payload: pdu.message_payload ? Buffer.from(pdu.message_payload.message || '').toString('hex') : undefined,
    };

    if (config.dropAfter > 0 && !dropped && answered >= config.dropAfter) {
      // Taken but never answered: the client cannot know.
      const n = nextId++;
      held.push([n, pdu]);
      log(Object.assign(entry, { status: 'held', message_id: formatId(n, config.idBase) }));
      if (held.length >= config.dropHeld) {
        dropped = true;
        log({ event: 'drop', session: id, held: held.length });
        receiptBound.delete(session);
        session.destroy();
        for (const [m, p] of held) sendReceipt(m, p);
        held = [];
      }
      return;
    }

    const forced = config.statusFor.find(([prefix]) => String(pdu.destination_addr).startsWith(prefix));
    if (forced) {
      log(Object.assign(entry, { status: 'refused', command_status: forced[1] }));
      session.send(pdu.response({ command_status: forced[1] }));
      return;
    }

    if (config.throttleEvery > 0 && submits % config.throttleEvery === 0) {
      log(Object.assign(entry, { status: 'throttled' }));
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }

    const n = nextId++;
    const messageId = formatId(n, config.idBase);
    answered += 1;
    log(Object.assign(entry, { status: 'ok', message_id: messageId }));
    const answer = () => {
      if (!open) return;
      log({ event: 'submit_sm_resp', session: id, seq: pdu.sequence_number, t: Date.now() });
      if (config.receiptOrder === 'before') {
        sendReceipt(n, pdu);
        session.send(pdu.response({ message_id: messageId }));
      } else if (config.receiptDelayMs > 0) {
        session.send(pdu.response({ message_id: messageId }));
        setTimeout(() => sendReceipt(n, pdu), config.receiptDelayMs);
      } else {
        session.send(pdu.response({ message_id: messageId }));
        sendReceipt(n, pdu);
      }
    };
    if (config.delayMs > 0) setTimeout(answer, config.delayMs);
    else answer();
  });
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
