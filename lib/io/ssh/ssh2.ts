/**
 * ssh2, loaded at its first use rather than with the modules that use it: a run reaches for it only once it
 * connects, by which time its TCP connection to Spark is already on the way (dial.ts). The prebuilt bundle holds it
 * (its optional native crypto binding is still looked for in node_modules: scripts/bundle.ts).
 */
import type ssh2 from 'ssh2';

let loading: Promise<typeof ssh2> | undefined;

export function loadSsh2(): Promise<typeof ssh2> {
  loading ??= import('ssh2').then((m) => m.default);
  return loading;
}
