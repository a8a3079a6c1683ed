-- tvsd-mix.lua: replay the request mix of pcapgen on one port at one rate
-- and count tvsd's replies (README.md). Pktgen-DPDK 23.06.1:
--   pktgen ... -- -m '[1].0' -s 0:mix.pcap -f perf/pktgen/tvsd-mix.lua
-- Environment: TVS_LUA_DIR (folder of this script), TVS_RATE (percent of
-- link speed, default 10), and those of tvsd_common.lua.
local dir = os.getenv("TVS_LUA_DIR") or "."
local pg = dofile(dir .. "/tvsd_common.lua")
local rate = tonumber(os.getenv("TVS_RATE") or "10") or 10

pg.pcap_on()
local r = pg.step("tvsd-mix", rate, pg.seconds)
pg.summary("tvsd-mix", r)
pg.finish()
