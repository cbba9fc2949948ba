// A user's whole journey: ask for the coupon, wait until it is ISSUED, use it once, see a second use refused,
// and find it used in the wallet.
//   k6 run -e COUPON_ID=... -e TOKENS_FILE=tokens.txt [-e VUS=50] k6/usage.js
// The coupon needs at least VUS units for every VU to get one (the others stop after their 409).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE_URL, COUPON_ID, auth, issue, requireCoupon, users } from './lib.js';

const VUS = Math.min(parseInt(__ENV.VUS || '50', 10), users.length);

export const options = {
  scenarios: { usage: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '2m' } },
  thresholds: {
    http_req_failed: [`rate<${__ENV.MAX_ERROR_RATE || '0.01'}`],
    checks: ['rate>0.99'],
    'http_req_duration{name:usage}': [`p(95)<${__ENV.P95_MS || '1000'}`],
  },
};

export function setup() {
  requireCoupon();
}

export default function () {
  const user = users[__VU - 1];
  const params = auth(user, `k6-usage-${__VU}`);
  if (issue(user, params.headers['X-Request-Id']).status !== 202) {
    return;
  }
  let status = 'PENDING';
  for (let i = 0; i < 50 && status !== 'ISSUED'; i++) {
    sleep(0.2);
    const res = http.get(`${BASE_URL}/api/coupon/${COUPON_ID}/issue`, { headers: params.headers, tags: { name: 'status' } });
    status = res.status === 200 ? res.json('data.status') : status;
  }
  check(status, { 'status: ISSUED within 10 s': (s) => s === 'ISSUED' });
  const used = http.post(`${BASE_URL}/api/coupon/${COUPON_ID}/usage`, null, { headers: params.headers, tags: { name: 'usage' } });
  check(used, { 'usage: 200 the first time': (r) => r.status === 200 && r.json('data.used') === true });
  const again = http.post(`${BASE_URL}/api/coupon/${COUPON_ID}/usage`, null, { headers: params.headers, tags: { name: 'usage' } });
  check(again, { 'usage: 409 the second time': (r) => r.status === 409 });
  const owned = http.get(`${BASE_URL}/api/coupon/owned-coupons`, { headers: params.headers, tags: { name: 'owned' } });
  check(owned, {
    'wallet: the coupon is there, used': (r) =>
      r.status === 200 && (r.json('data') || []).some((c) => c.couponId === COUPON_ID && c.used === true),
  });
}
