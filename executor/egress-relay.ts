// The fixed parts of a job's egress network, shared by the code that makes
// them (egress-network.ts) and the socket proxy that lets exactly them through
// (deploy/docker-api-rules.ts): names, labels, the relay's script, the paths
// the CA is mounted at, the holders' command, and the gVisor runtime for
// network-granted jobs.

/** Each job's network is airlock-egress-<job id>. */
export const EGRESS_NETWORK = /^airlock-egress-[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/;
/** A job's network holder (egress-network.ts): airlock-egress-holder-<uuid>. */
export const HOLDER_PREFIX = "airlock-egress-holder-";
export const EGRESS_HOLDER = /^airlock-egress-holder-[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/;
/** What a holder runs: nothing but a sleep, so that its network namespace lives. */
export const HOLDER_CMD = ["sleep", "infinity"] as const;
/** On egress networks ("network"), the relay container ("relay") and the holders ("holder"). */
export const LABEL_EGRESS = "airlock.egress";
export const RELAY_PORT = 3128;
/** A network the gateway in a container is on, for the relay to reach it (AIRLOCK_EGRESS_RELAY_NETWORK). */
export const RELAY_NETWORK = /^airlock-relay-[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/;
/** Where a CA volume (the gateway in a container) is mounted in the sandbox, read-only. */
export const CA_DIR_PATH = "/etc/airlock";
/** On the CA volume (LABEL_EGRESS's value): the only volume mounted at CA_DIR_PATH. */
export const CA_VOLUME_LABEL = "ca";
/** Where the sandbox finds the CA bundle (read-only). */
export const CA_BUNDLE_PATH = "/etc/airlock/egress-ca-bundle.pem";
export const CA_CERT_PATH = "/etc/airlock/egress-ca.pem";
/** gVisor with a network: runsc's entry pins --network=none, so a second entry (provision.sh). */
export const RUNSC_NETWORK_RUNTIME = "runsc-net";

/** Pipes every connection to the proxy (argv: its host and port); it decides nothing. */
export const RELAY_SCRIPT = `const net=require("net");const [h,p]=process.argv.slice(1);
net.createServer(c=>{const u=net.connect(Number(p),h);c.pipe(u).pipe(c);
c.on("error",()=>u.destroy());u.on("error",()=>c.destroy());}).listen(${RELAY_PORT});`;
