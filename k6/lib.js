// Shared by the k6 scripts: configuration from the environment, the users' tokens, the issue request.
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import { Counter } from 'k6/metrics';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8000';
export const COUPON_ID = __ENV.COUPON_ID || '';
export const TOKENS_FILE = __ENV.TOKENS_FILE || '';

// `flask mint-users N --out FILE` writes one "user_id token" per line; each VU takes its own line.
export const users = new SharedArray('users', function () {
  if (!TOKENS_FILE) {
    throw new Error('set TOKENS_FILE (from `flask --app wsgi mint-users N --out FILE`)');
  }
  return open(TOKENS_FILE)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [userId, token] = line.split(/\s+/);
      return { userId, token };
    });
});

export function requireCoupon() {
  if (!COUPON_ID) {
    throw new Error('set COUPON_ID (from `flask --app wsgi create-coupon ...`)');
  }
}

// One counter per outcome the API can give an issue request, told apart by status and error code.
export const outcomes = {
  accepted: new Counter('issue_accepted'),
  duplicate: new Counter('issue_duplicate'),
  soldOut: new Counter('issue_sold_out'),
  notActive: new Counter('issue_not_active'),
  unavailable: new Counter('issue_unavailable'),
  unexpected: new Counter('issue_unexpected'),
};

// 409 is an expected answer in a flash sale (sold out, already in): not an HTTP failure.
http.setResponseCallback(http.expectedStatuses(200, 202, 409));

export function auth(user, requestId) {
  const headers = { Authorization: `Bearer ${user.token}` };
  if (requestId) {
    headers['X-Request-Id'] = requestId;
  }
  return { headers, tags: { name: 'issue' } };
}

function code(res) {
  try {
    const body = res.json();
    return body && body.errorMessage ? body.errorMessage.code : null;
  } catch (e) {
    return null;
  }
}

// E3002 duplicate, E3003 sold out, E3004/E3005/E3006 not started / ended / disabled (see docs/API.md).
export function issue(user, requestId) {
  const res = http.post(`${BASE_URL}/api/coupon/${COUPON_ID}/issue`, null, auth(user, requestId));
  const errorCode = code(res);
  check(res, {
    'issue: 202 accepted, 409 refused or 503 unavailable': (r) => [202, 409, 503].includes(r.status),
    'issue: 202 has a rank': (r) => r.status !== 202 || (r.json('data.rank') || 0) >= 1,
    'issue: 409 names why (E3002 duplicate / E3003 sold out / E300x not active)': (r) =>
      r.status !== 409 || ['E3002', 'E3003', 'E3004', 'E3005', 'E3006'].includes(errorCode),
    'issue: 503 is a dependency outage or load shedding (E503x)': (r) => r.status !== 503 || /^E503/.test(errorCode || ''),
  });
  if (res.status === 202) outcomes.accepted.add(1);
  else if (res.status === 409 && errorCode === 'E3002') outcomes.duplicate.add(1);
  else if (res.status === 409 && errorCode === 'E3003') outcomes.soldOut.add(1);
  else if (res.status === 409) outcomes.notActive.add(1);
  else if (res.status === 503) outcomes.unavailable.add(1);
  else outcomes.unexpected.add(1);
  return res;
}
