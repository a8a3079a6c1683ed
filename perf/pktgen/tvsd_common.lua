-- tvsd_common.lua: what tvsd-mix.lua and tvsd-sweep.lua share (README.md).
-- Loaded with dofile() by path, because pktgen runs scripts from its own
-- directory. Settings come from the environment, which run-pktgen sets:
--   TVS_PORT      pktgen port that faces tvsd (default "0")
--   TVS_SECONDS   seconds of traffic per step (default 10)
--   TVS_OUT       file that gets the result lines (default: stdout only)
local M = {}

M.port = os.getenv("TVS_PORT") or "0"
M.seconds = tonumber(os.getenv("TVS_SECONDS") or "10") or 10
local out_path = os.getenv("TVS_OUT")
local out = out_path and io.open(out_path, "a") or nil

-- One line to the result file (if any) and to pktgen's console.
function M.say(line)
	if out then
		out:write(line, "\n")
		out:flush()
	end
	print(line)
end

-- Cumulative packets and bytes of the port: pktgen counts what its PMD
-- sent (opackets) and received (ipackets); received is tvsd's replies.
local function totals(port)
	local s = pktgen.portStats(port, "port")[tonumber(port)]
	return { tx = s.opackets, rx = s.ipackets, rxb = s.ibytes or 0,
		missed = (s.imissed or 0) + (s.rx_nombuf or 0) }
end

local function now()
	return os.time()
end

-- Sends at rate (percent of the link speed pktgen believes in) for
-- seconds, sampling every second; returns the sums of the step.
function M.step(label, rate, seconds)
	local port = M.port
	pktgen.set(port, "rate", rate)
	local first = totals(port)
	local prev = first
	pktgen.start(port)
	for t = 1, seconds do
		pktgen.delay(1000)
		local cur = totals(port)
		local tx, rx = cur.tx - prev.tx, cur.rx - prev.rx
		M.say(string.format(
			"%s t=%d offered_pps=%d reply_pps=%d reply_mbps=%.1f ratio=%.3f",
			label, t, tx, rx, (cur.rxb - prev.rxb) * 8 / 1e6,
			tx > 0 and rx / tx or 0))
		prev = cur
	end
	pktgen.stop(port)
	-- replies to the last requests are still on their way
	pktgen.delay(500)
	local last = totals(port)
	local sent, got = last.tx - first.tx, last.rx - first.rx
	return { rate = rate, seconds = seconds, sent = sent, got = got,
		rx_bytes = last.rxb - first.rxb, missed = last.missed - first.missed }
end

function M.summary(label, r)
	M.say(string.format(
		"%s summary: rate=%s seconds=%d offered_pkts=%d reply_pkts=%d offered_pps=%.0f " ..
		"reply_pps=%.0f reply_mbps=%.1f ratio=%.4f rx_missed=%d",
		label, tostring(r.rate), r.seconds, r.sent, r.got, r.sent / r.seconds,
		r.got / r.seconds, r.rx_bytes * 8 / 1e6 / r.seconds,
		r.sent > 0 and r.got / r.sent or 0, r.missed))
end

-- The request pcap given with -s P:file is sent instead of the single packet.
function M.pcap_on()
	pktgen.pcap(M.port, "on")
end

function M.finish()
	if out then
		out:close()
	end
	if os.getenv("TVS_NO_QUIT") == nil then
		pktgen.quit()
	end
end

return M
