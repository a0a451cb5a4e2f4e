// Drives web/src/crypto.js for tests/unit/test_web_crypto.py: reads one JSON command on stdin,
// prints one JSON answer on stdout. Bytes travel as hex (no 0x). A thrown error comes back as
// {"error": {"name", "message", "crypto": whether it is a CryptoError}}.
//
//   {"op": "derive", "signature", "address", "ethPrivateKey"?}  -> privateKey, publicKey, typedData, viemSignature?
//   {"op": "bucket", "cases": [[dataType, size], ...]}          -> buckets
//   {"op": "encryptRecord", "plaintext", "recipients", "dataType"} -> ciphertext, keyEnvelope
//   {"op": "openRecord", "ciphertext", ("keyEnvelope", "privateKey") | "dataKey"} -> dataType, plaintext
//   {"op": "commitment", "requestId", "salt", "resultJson"}     -> canonical, commitment
//   {"op": "sealResult", "requestId", "resultJson", "publicKey"} -> ciphertext, commitment
//   {"op": "openResult", "ciphertext", "privateKey"}            -> requestId, result, salt, commitment, resultBytes

import { privateKeyToAccount } from "viem/accounts";

import * as aidoc from "../../web/src/crypto.js";

const hex = (bytes) => aidoc.bytesToHex(bytes).slice(2);
const bytes = (text) => aidoc.hexToBytes(`0x${text}`);

const ops = {
  async derive({ signature, address, ethPrivateKey }) {
    const { privateKey, publicKey } = await aidoc.encryptionKeyFromSignature(signature);
    const answer = { privateKey: hex(privateKey), publicKey: hex(publicKey), typedData: aidoc.encryptionKeyTypedData(address) };
    if (ethPrivateKey) {
      const account = privateKeyToAccount(ethPrivateKey);
      answer.viemAddress = account.address;
      answer.viemSignature = await account.signTypedData(aidoc.encryptionKeyTypedDataForViem(address));
    }
    return answer;
  },
  async bucket({ cases }) {
    return { buckets: cases.map(([dataType, size]) => aidoc.recordBucket(dataType, size)) };
  },
  async encryptRecord({ plaintext, recipients, dataType }) {
    const sealed = await aidoc.encryptRecord(bytes(plaintext), recipients.map(bytes), dataType);
    return { ciphertext: hex(sealed.ciphertext), keyEnvelope: hex(sealed.keyEnvelope) };
  },
  async openRecord({ ciphertext, keyEnvelope, privateKey, dataKey }) {
    const opened = dataKey
      ? await aidoc.decryptRecord(bytes(ciphertext), bytes(dataKey))
      : await aidoc.openRecord(bytes(ciphertext), bytes(keyEnvelope), bytes(privateKey));
    return { dataType: opened.dataType, plaintext: hex(opened.plaintext) };
  },
  async commitment({ requestId, salt, resultJson }) {
    const canonical = aidoc.canonicalResult(JSON.parse(resultJson));
    return { canonical: new TextDecoder().decode(canonical), commitment: aidoc.resultCommitment(BigInt(requestId), bytes(salt), canonical) };
  },
  async sealResult({ requestId, resultJson, publicKey }) {
    const sealed = await aidoc.sealResult(BigInt(requestId), JSON.parse(resultJson), bytes(publicKey));
    return { ciphertext: hex(sealed.ciphertext), commitment: sealed.commitment };
  },
  async openResult({ ciphertext, privateKey }) {
    const opened = await aidoc.openResult(bytes(ciphertext), bytes(privateKey));
    return {
      requestId: opened.requestId.toString(),
      result: JSON.parse(JSON.stringify(opened.result, (_, v) => (typeof v === "bigint" ? v.toString() : v))),
      salt: hex(opened.salt),
      commitment: opened.commitment,
      resultBytes: hex(opened.resultBytes),
    };
  },
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const command = JSON.parse(input);
let answer;
try {
  if (!Object.hasOwn(ops, command.op)) throw new Error(`unknown op ${command.op}`);
  answer = await ops[command.op](command);
} catch (e) {
  answer = { error: { name: e.name, message: e.message, crypto: e instanceof aidoc.CryptoError } };
}
process.stdout.write(`${JSON.stringify(answer)}\n`);
