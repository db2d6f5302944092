/**
 * ssh2, loaded at its first use rather than with the modules that use it: a run reaches for it only once it
 * connects, by which time its TCP connection to Spark is already on the way (dial.ts). In the prebuilt bundle it stays
 * a package of its own, loaded from node_modules, where its optional native crypto binding is found.
 */
import type ssh2 from 'ssh2';

let loading: Promise<typeof ssh2> | undefined;

export function loadSsh2(): Promise<typeof ssh2> {
  loading ??= import('ssh2').then((m) => m.default);
  return loading;
}
