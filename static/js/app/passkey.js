// WebAuthn ceremonies in the browser: JSON options in, JSON credential out, and messages a
// person can act on when the authenticator refuses.

export class PasskeyCancelled extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "PasskeyCancelled";
  }
}

export const NOT_VERIFIED = "Fingerprint or face not verified — nothing was approved.";

/** @param {unknown} error @param {string} notVerified */
function friendly(error, notVerified) {
  const name = /** @type {any} */ (error)?.name;
  if (name === "NotAllowedError" || name === "AbortError") return new PasskeyCancelled(notVerified);
  if (name === "InvalidStateError") {
    return new PasskeyCancelled("This authenticator already holds a passkey for this account.");
  }
  if (name === "NotSupportedError" || name === "SecurityError") {
    return new PasskeyCancelled(
      "This browser cannot use a fingerprint or face passkey here. Try your phone's browser.",
    );
  }
  return error;
}

/**
 * @param {any} options the server's creation options JSON
 * @returns {Promise<any>} the credential's JSON
 */
export async function createPasskey(options) {
  try {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = /** @type {PublicKeyCredential} */ (
      await navigator.credentials.create({ publicKey })
    );
    return credential.toJSON();
  } catch (error) {
    throw friendly(error, "Fingerprint or face not verified — no account was created.");
  }
}

/**
 * @param {any} options the server's request options JSON
 * @param {string} [notVerified] the message when verification fails or is cancelled
 * @returns {Promise<any>} the assertion's JSON
 */
export async function getAssertion(options, notVerified = NOT_VERIFIED) {
  try {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const credential = /** @type {PublicKeyCredential} */ (
      await navigator.credentials.get({ publicKey })
    );
    return credential.toJSON();
  } catch (error) {
    throw friendly(error, notVerified);
  }
}
