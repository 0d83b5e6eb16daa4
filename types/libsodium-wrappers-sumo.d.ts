// The part of libsodium-wrappers-sumo 0.8.4 that static/js/protocol/ calls (primitives.js),
// typed as it behaves: the package's own declarations give a secretstream state as an object
// `{name, address}`, but the library returns and takes the state's heap address, a number.
// tsconfig.json maps the import to this file; tests/js/vendor.test.js checks every name here
// against the vendored library.

/** A secretstream state: its address on libsodium's heap. */
export type StreamState = number;
/** A generichash state (crypto_generichash_init): its heap address too. */
export type GenerichashState = number;

export interface SignKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  keyType: string;
}

export interface StreamChunk {
  message: Uint8Array;
  tag: number;
}

export interface Sodium {
  readonly ready: Promise<void>;

  readonly crypto_secretstream_xchacha20poly1305_ABYTES: number;
  readonly crypto_secretstream_xchacha20poly1305_HEADERBYTES: number;
  readonly crypto_secretstream_xchacha20poly1305_TAG_FINAL: number;
  readonly crypto_secretstream_xchacha20poly1305_TAG_MESSAGE: number;

  crypto_sign_seed_keypair(seed: Uint8Array): SignKeyPair;
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_sign_ed25519_pk_to_curve25519(edPk: Uint8Array): Uint8Array;
  crypto_sign_ed25519_sk_to_curve25519(edSk: Uint8Array): Uint8Array;
  crypto_scalarmult_base(privateKey: Uint8Array): Uint8Array;
  crypto_scalarmult(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_generichash(hashLength: number, message: Uint8Array, key: Uint8Array | null): Uint8Array;
  crypto_generichash_init(key: Uint8Array | null, hashLength: number): GenerichashState;
  crypto_generichash_update(state: GenerichashState, message: Uint8Array): void;
  crypto_generichash_final(state: GenerichashState, hashLength: number): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
    message: Uint8Array,
    additionalData: Uint8Array | null,
    secretNonce: null,
    publicNonce: Uint8Array,
    key: Uint8Array,
  ): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_decrypt(
    secretNonce: null,
    ciphertext: Uint8Array,
    additionalData: Uint8Array | null,
    publicNonce: Uint8Array,
    key: Uint8Array,
  ): Uint8Array;
  crypto_secretstream_xchacha20poly1305_init_pull(header: Uint8Array, key: Uint8Array): StreamState;
  crypto_secretstream_xchacha20poly1305_push(
    state: StreamState,
    chunk: Uint8Array,
    additionalData: Uint8Array | null,
    tag: number,
  ): Uint8Array;
  /** False (or a throw) when the chunk does not authenticate. */
  crypto_secretstream_xchacha20poly1305_pull(
    state: StreamState,
    chunk: Uint8Array,
    additionalData: Uint8Array | null,
  ): StreamChunk | false;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seal_open(ciphertext: Uint8Array, publicKey: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_kem_mlkem768_seed_keypair(seed: Uint8Array): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_kem_mlkem768_enc_deterministic(publicKey: Uint8Array, seed: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  crypto_kem_mlkem768_dec(ciphertext: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_stream_xchacha20_xor_ic(
    message: Uint8Array,
    nonce: Uint8Array,
    initialCounter: number,
    key: Uint8Array,
  ): Uint8Array;
  memcmp(a: Uint8Array, b: Uint8Array): boolean;
  randombytes_buf(length: number): Uint8Array;
}

declare const sodium: Sodium;
export default sodium;
