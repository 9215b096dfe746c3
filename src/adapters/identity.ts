import type { Config } from "../config";
import { createCipher } from "../lib/crypto";
import { createPasswordHasher } from "../lib/password";
import type { Clock, Logger, Ports, RevocationStore } from "../ports";
import { createApiKeyVerifier } from "../services/api-keys";
import { createIpBanList } from "../services/bans";
import { createDeviceVerifier } from "../services/devices";
import { createKeyRing } from "../services/keys";

/** The identity ports (keys, password hashing, sealing, the admin key) from config and secrets. */
export function createIdentityPorts(
  config: Config,
  secrets: { adminKeyHash: string; keyEncryptionSecret: string },
  clock: Clock,
  revocations: RevocationStore,
  logger: Logger,
): Pick<
  Ports,
  "keys" | "passwords" | "sealer" | "adminKeyHash" | "apiKeys" | "ipBans" | "devices"
> {
  return {
    devices: createDeviceVerifier({ clock }),
    ipBans: createIpBanList({ clock, logger }),
    apiKeys: createApiKeyVerifier({ clock, revocations }),
    keys: createKeyRing({
      cipher: createCipher(secrets.keyEncryptionSecret, "signing-keys"),
      clock,
    }),
    passwords: createPasswordHasher({
      memoryCost: config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: config.PASSWORD_HASH_ITERATIONS,
    }),
    sealer: createCipher(secrets.keyEncryptionSecret, "sealed-secrets"),
    adminKeyHash: secrets.adminKeyHash,
  };
}
