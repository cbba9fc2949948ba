// A flash sale: every VU is a distinct user with its own token and makes exactly one issue attempt, all at once.
//   k6 run -e COUPON_ID=... -e TOKENS_FILE=tokens.txt [-e BASE_URL=http://127.0.0.1:8000] k6/flash_sale.js
// VUS (default: one per line of TOKENS_FILE), P95_MS (default 500), MAX_ERROR_RATE (default 0.01).
import { issue, requireCoupon, users } from './lib.js';

const VUS = Math.min(parseInt(__ENV.VUS || `${users.length}`, 10), users.length);

export const options = {
  scenarios: {
    flash_sale: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: __ENV.MAX_DURATION || '2m' },
  },
  thresholds: {
    // Anything but 202/409 (a 5xx, a refused connection) counts as an error.
    http_req_failed: [`rate<${__ENV.MAX_ERROR_RATE || '0.01'}`],
    'http_req_duration{name:issue}': [`p(95)<${__ENV.P95_MS || '500'}`],
    issue_unexpected: ['count==0'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  requireCoupon();
}

export default function () {
  const user = users[__VU - 1];
  issue(user, `k6-flash-${__VU}`);
}
