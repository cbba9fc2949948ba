// Ramping load like the original's run: VUs grow to 10,000 and back; each VU keeps one user and keeps
// asking (after its first answer it is told duplicate or sold out, which the API must answer just as fast).
//   k6 run -e COUPON_ID=... -e TOKENS_FILE=tokens.txt k6/ramping.js
// STAGES (default "30s:1000,30s:5000,60s:10000,30s:0"), PAUSE_S between a VU's requests (default 0.5),
// P95_MS (default 1000), MAX_ERROR_RATE (default 0.01). VUs beyond the tokens file reuse its users.
import { sleep } from 'k6';
import { issue, requireCoupon, users } from './lib.js';

function stages(spec) {
  return spec.split(',').map((part) => {
    const [duration, target] = part.trim().split(':');
    return { duration, target: parseInt(target, 10) };
  });
}

export const options = {
  scenarios: {
    ramping: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: stages(__ENV.STAGES || '30s:1000,30s:5000,60s:10000,30s:0'),
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    http_req_failed: [`rate<${__ENV.MAX_ERROR_RATE || '0.01'}`],
    'http_req_duration{name:issue}': [`p(95)<${__ENV.P95_MS || '1000'}`],
    issue_unexpected: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  requireCoupon();
}

export default function () {
  issue(users[(__VU - 1) % users.length]);
  sleep(parseFloat(__ENV.PAUSE_S || '0.5'));
}
