/** A remote command's output as the laptop keeps it: stdout cut at a bound, stderr at a cap, UTF-8 decoded. */
import { StringDecoder } from 'node:string_decoder';
import type { RemoteResult } from '../../core/ports.ts';

/** A remote command's result with the two conditions a runbook must tell apart from "the command failed". */
export interface SparkRemoteResult extends RemoteResult {
  /** The command ran past its timeout; its channel was closed (and sent KILL) and `code` is null. */
  timedOut: boolean;
  /** The connection was gone before or during the command; `code` is null. Later commands fail the same way. */
  connectionLost: boolean;
}

/** stderr beyond this is dropped (with a marker): a runaway command must not exhaust the laptop's memory. */
export const STDERR_CAP_BYTES = 1024 * 1024;

/** Decodes UTF-8; after a cut at `maxBytes`, drops the incomplete character the cut may have split. */
function decodeUtf8(buffer: Buffer, cut = false): string {
  const decoder = new StringDecoder('utf8');
  const text = decoder.write(buffer);
  return cut ? text : text + decoder.end();
}

/** A command's stdout (cut at `maxBytes`) and stderr (cut at {@link STDERR_CAP_BYTES}). */
export class Output {
  private readonly stdoutChunks: Buffer[] = [];
  private stdoutBytes = 0;
  truncated = false;
  private readonly stderrChunks: Buffer[] = [];
  private stderrBytes = 0;
  private stderrCut = false;

  private readonly maxBytes: number | undefined;

  constructor(maxBytes: number | undefined) {
    this.maxBytes = maxBytes;
  }

  /** Keeps a stdout chunk; true when this one reached `maxBytes` (the channel should close). */
  stdout(chunk: Buffer): boolean {
    if (this.truncated) return false;
    if (this.maxBytes !== undefined && this.stdoutBytes + chunk.length > this.maxBytes) {
      const room = Math.max(0, this.maxBytes - this.stdoutBytes);
      if (room > 0) this.stdoutChunks.push(chunk.subarray(0, room));
      this.stdoutBytes += room;
      this.truncated = true;
      return true;
    }
    this.stdoutChunks.push(chunk);
    this.stdoutBytes += chunk.length;
    return false;
  }

  stderr(chunk: Buffer): void {
    if (this.stderrBytes >= STDERR_CAP_BYTES) {
      this.stderrCut = true;
      return;
    }
    const room = STDERR_CAP_BYTES - this.stderrBytes;
    if (chunk.length > room) this.stderrCut = true;
    const kept = chunk.subarray(0, room);
    this.stderrChunks.push(kept);
    this.stderrBytes += kept.length;
  }

  stdoutText(): string {
    return decodeUtf8(Buffer.concat(this.stdoutChunks), this.truncated);
  }

  stderrText(): string {
    const text = decodeUtf8(Buffer.concat(this.stderrChunks), this.stderrCut);
    return this.stderrCut ? `${text}\n[ssh: stderr cut at ${STDERR_CAP_BYTES} bytes]` : text;
  }
}
