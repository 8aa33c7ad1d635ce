// Bundle entry for the `vkernel` CLI (build/vkernel.js): runs the CLI unconditionally.
import { main } from './vkernel';
import { reportError } from './context';

main(process.argv.slice(2)).catch((err) => {
  reportError(err);
  process.exitCode = 1;
});
