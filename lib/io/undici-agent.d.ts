/** undici's Agent alone (lib/io/keep-alive.ts): its own file, typed by the package's declaration of it. */
declare module 'undici/lib/dispatcher/agent.js' {
  export { Agent as default } from 'undici';
}
