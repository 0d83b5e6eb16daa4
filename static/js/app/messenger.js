// The messenger in a tab (DESIGN sections 3, 6 and 7): only the leader tab (socket.js) sends
// and receives; the others only listen to `changes` (events.js). No DOM here: pages read
// IndexedDB (records.js) and act through the modules of each concern:
//
//   events.js     changes told to every tab      statelock.js  the device's state lock
//   self.js       own record, settings           records.js    message records, reads
//   contacts.js   contacts, security codes       listnotices.js the engine's list notices
//   notices.js    lines that are not messages    lists.js      device lists (engine adapter)
//   outbox.js     queue and send (outboxdrain.js, fanout.js)     inbox.js  deliveries, receipts
//   retries.js    retry records and requests     resendcache.js what was sent, to send again
//   groups.js     the group machine (a record per group, its conversation)

import { engine, frames, ready } from "../protocol/index.js";
import { groupFetch, groupsListed } from "./groups.js";
import { resumeHistory } from "./history.js";
import { onDeliver, refillPrekeys } from "./inbox.js";
import "./listnotices.js";
import { refusalOf, runEngine } from "./lists.js";
import { answered, flush } from "./outbox.js";
import { retryDue } from "./retries.js";
import { onDeviceFrame, onLeader, onSocketOpen, sendFrame, socketOpen } from "./socket.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import "./contacts.js"; // applies synced contacts (sync.js onSynced)
import "./flags.js"; // applies synced pins, archives, mutes and blocks
import { syncFetch } from "./sync.js";

/** The server says the own list changed: the engine fetches and checks it. @param {any} frame */
function ownListChanged(frame) {
  runEngine(new engine.FrameReceived(frame, Date.now()), [])
    .then((run) =>
      run.effects.forEach((e) => {
        const error = refusalOf(e, run.failures);
        if (error) console.warn("Parley: own device list refresh failed", error);
      }),
    )
    .catch((error) => console.warn("Parley: own device list refresh failed", error));
}

/** The own list, fetched afresh on every (re)connect: a device that was offline when another
 * logged out, or a page closed between a removal and accepting its list, learns it here (and
 * the sync machine re-keys, 22.8), as the Python client does. */
async function ownListChecked() {
  const me = await store.getSelf();
  if (!me) return;
  runEngine(new engine.ListWanted(me.accountId, Date.now(), true), []).catch((error) =>
    console.warn("Parley: own device list check failed", error),
  );
}

/** The server says a group's log grew (19.4): the group machine reads it. @param {string} groupId */
function groupChanged(groupId) {
  withStateLock(() => groupFetch(groupId)).catch((error) => console.warn("Parley: a group could not be read", error));
}

/** The groups the server lists, on every (re)connect: a doorbell missed while away. */
function groupsChecked() {
  groupsListed(withStateLock).catch((error) => console.warn("Parley: the groups could not be listed", error));
}

/** @param {any} frame a frame of the device socket */
function onFrame(frame) {
  if (frame.type === frames.DELIVER && Array.isArray(frame.envelopes)) onDeliver(frame.envelopes);
  else if (frame.type === frames.ACCEPTED) answered(frame.id, frame);
  else if (frame.type === frames.ERROR && frame.ref) answered(frame.ref, frame);
  else if (frame.type === frames.DEVICES_CHANGED) ownListChanged(frame);
  else if (frame.type === frames.PREKEYS_LOW) refillPrekeys();
  else if (frame.type === frames.GROUP_CHANGED && typeof frame.group_id === "string") groupChanged(frame.group_id);
  else if (frame.type === frames.STATE_CHANGED && Number.isSafeInteger(frame.version)) syncFetch(frame.version);
}

/** How often the leader feeds the engine `retry_due` while its socket is open (24.2). */
const RETRY_TICK_MS = 3000;

let started = false;

/** Run the messenger in this tab: as leader it receives and sends; otherwise it only listens. */
export async function startMessenger() {
  if (started) return;
  started = true;
  if (!(await store.getSelf())) return;
  await ready();
  onLeader(() => {
    onDeviceFrame(onFrame);
    onSocketOpen(() => {
      flush();
      syncFetch(null); // the state_changed doorbell may have rung while the socket was closed
      ownListChecked();
      groupsChecked();
    });
    // Deliveries that reached the socket before this listener existed were not handled:
    // ask for every unacknowledged envelope again (one handled already is acked again and
    // skipped, inbox.js), and check the prekey pool, whose `prekeys_low` on connect may have
    // been missed too.
    if (sendFrame({ type: frames.FETCH })) {
      flush();
      refillPrekeys();
      syncFetch(null);
      ownListChecked();
      groupsChecked();
    }
    resumeHistory();
    window.setInterval(() => {
      if (socketOpen()) retryDue();
    }, RETRY_TICK_MS);
  });
}
