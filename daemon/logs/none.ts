// none: nothing is written anywhere; `docker logs` answers 501 "configured logging driver does not
// support reading", as Docker.
import type { LogDriver } from './driver';

export const none: LogDriver = {
  name: 'none',
  validate() {
    // Docker takes any option with none, and uses none of them.
  },
  async shimArgs() {
    return ['--log-driver', 'none'];
  },
  readPath() {
    return null;
  },
  inspectPath() {
    return '';
  },
};
