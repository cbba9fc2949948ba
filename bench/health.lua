-- wrk script for the ceiling: GET /health, latency percentiles as JSON at the end.
function done(summary, latency, requests)
  io.write(string.format('LATENCY {"p50": %.3f, "p95": %.3f, "p99": %.3f, "max": %.3f}\n',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
