// What a person reads while a history bundle moves: "12 of 33 messages · about 20 s left".
// The message count comes from the type-5 key (protocol section 10); the number moved so far
// is estimated from the bytes moved, since the blob is ciphertext until it arrives whole.

/** Below this many seconds left, no estimate is shown: it would only flicker. */
export const SHOW_TIME_LEFT_ABOVE_S = 5;

/**
 * @param {{moved: number, total: number, count: number | null | undefined, elapsedMs: number}} progress
 *   bytes moved of total, the bundle's message count, milliseconds since the transfer began
 * @returns {{messages: number | null, secondsLeft: number | null, text: string}}
 */
export function transferProgress({ moved, total, count, elapsedMs }) {
  const fraction = total > 0 ? Math.min(1, Math.max(0, moved / total)) : 0;
  const known = Number.isSafeInteger(count) && /** @type {number} */ (count) >= 0;
  const messages = known ? Math.floor(fraction * /** @type {number} */ (count)) : null;
  let secondsLeft = null;
  if (moved > 0 && moved < total && elapsedMs > 0) {
    const left = ((total - moved) / moved) * (elapsedMs / 1000);
    if (left > SHOW_TIME_LEFT_ABOVE_S) secondsLeft = Math.ceil(left);
  }
  const parts = [];
  if (messages !== null) parts.push(`${messages} of ${count} message${count === 1 ? "" : "s"}`);
  if (secondsLeft !== null) parts.push(`about ${formatDuration(secondsLeft)} left`);
  return { messages, secondsLeft, text: parts.join(" · ") };
}

/** "40 s", "3 min", "1 h 5 min". @param {number} seconds */
export function formatDuration(seconds) {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const rest = minutes % 60;
  return rest ? `${Math.floor(minutes / 60)} h ${rest} min` : `${minutes / 60} h`;
}
