import { chmodSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { realFiles } from '../../lib/io/context.ts';
import { tempDir } from '../helpers/run.ts';

describe('the report and audit files', () => {
  it('writes a report 0600 through a rename, also over an existing 0644 file, leaving no temporary file', () => {
    const dir = tempDir('hd-files-');
    const file = path.join(dir, 'report.md');
    writeFileSync(file, 'old');
    chmodSync(file, 0o644);
    realFiles.write(file, 'new report');
    expect(readFileSync(file, 'utf8')).toBe('new report');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['report.md']);
  });

  it('refuses to write or append through a symlink planted at the path', () => {
    const dir = tempDir('hd-files-');
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'keep me');
    const link = path.join(dir, 'report.json');
    symlinkSync(victim, link);
    expect(() => realFiles.write(link, 'x')).toThrow(/symbolic link/);
    expect(() => realFiles.append(link, 'x')).toThrow(/ELOOP/);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
  });

  it('creates an appended file (the audit file) 0600, and appends', () => {
    const dir = tempDir('hd-files-');
    const file = path.join(dir, 'state', 'audit.jsonl');
    realFiles.append(file, 'a\n');
    realFiles.append(file, 'b\n');
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(existsSync(path.join(dir, 'state'))).toBe(true);
  });

  it('keeps a file open for many appends (the audit file): created 0600, each line there at once, never via a symlink', () => {
    const dir = tempDir('hd-files-');
    const file = path.join(dir, 'state', 'audit.jsonl');
    const appender = realFiles.openAppend!(file);
    appender.append('a\n');
    expect(readFileSync(file, 'utf8')).toBe('a\n');
    appender.append('b\n');
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
    appender.close();
    appender.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'keep me');
    const link = path.join(dir, 'link.jsonl');
    symlinkSync(victim, link);
    expect(() => realFiles.openAppend!(link)).toThrow(/ELOOP/);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
  });
});
