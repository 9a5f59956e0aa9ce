-- wrk's report as one JSON line (benchmarks/loadgen.py reads it): request and error counts,
-- and the latency spectrum in microseconds, from wrk's own histogram of every request.
done = function(summary, latency, requests)
  local points = {}
  local levels = {}
  for p = 1, 99 do levels[#levels + 1] = p end
  for _, p in ipairs({99.5, 99.9, 99.95, 99.99}) do levels[#levels + 1] = p end
  for _, p in ipairs(levels) do
    points[#points + 1] = string.format("[%g,%d]", p, latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.2f,"stdev":%.2f},"percentiles":[%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(points, ",")))
end
