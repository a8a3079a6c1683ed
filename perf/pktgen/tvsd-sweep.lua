-- tvsd-sweep.lua: the request mix at rising rates, one step each, to find
-- where tvsd's replies stop following the offered load (README.md).
-- Environment: TVS_LUA_DIR, TVS_RATES (percents, default "1,2,5,10,25,50,100"),
-- and those of tvsd_common.lua (TVS_SECONDS is per step).
local dir = os.getenv("TVS_LUA_DIR") or "."
local pg = dofile(dir .. "/tvsd_common.lua")
local rates = os.getenv("TVS_RATES") or "1,2,5,10,25,50,100"

pg.pcap_on()
for r in string.gmatch(rates, "[^,]+") do
	local res = pg.step("tvsd-sweep", tonumber(r), pg.seconds)
	pg.summary("tvsd-sweep", res)
	-- let tvsd's transfers of this step time out before the next one
	pktgen.delay(2000)
end
pg.finish()
