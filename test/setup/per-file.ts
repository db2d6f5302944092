/**
 * Runs in every test file: when the file ends, stop the sandboxes and remove the folders it still holds
 * (test/helpers/run.ts). Registered first, so it runs after the file's own afterAll hooks.
 */
import { afterAll } from 'vitest';
import { releaseAll } from '../helpers/run.ts';

afterAll(releaseAll, 120_000);
