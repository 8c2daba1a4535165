#!lua name=slowscan_v3
-- slowscan fleet library (docs/fleet.md): the fleet-wide count of a source's
-- distinct failed (destination, port) pairs per detector (R6), and the R8
-- alert rule per (source, detector) and across detectors, evaluated
-- atomically on the shard that holds the source.
--
-- A source is an identity (R9): an address, a MAC or a prefix, keyed by its
-- text ("198.51.100.7", "02-10-00-00-00-05", "2001:db8:bad:1::/64").
-- Every key of a source shares the hash tag {SOURCE}, so they live on one
-- slot (KEYS[1] is the source's prefix, e.g. "ss:{198.51.100.7}:"):
--   p            ZSET  (from a source's second pair on) member = pair (address bytes .. port, 2 bytes), score =
--                      its latest failure (Unix ms). Every pair while exact;
--                      the latest SAMPLE pairs once sketched.
--   s            HASH  c = the source's time (its latest failure, Unix ms);
--                      o, t = its only failed pair and that pair's latest
--                      failure, while it has one (then there is no p);
--                      n<sensor> = that sensor's latest failure pushed;
--                      m = 1 once sketched; w = alerts written "count:t,…";
--                      a<det> = count at the detector's latest alert (0:
--                      armed), q<det> = its alert_seq (0 when re-armed, as
--                      in the engine), k<det> = claims made (never reset).
--   h<W>:<b>     HLL   once sketched: the pairs whose failure fell in bucket
--                      b (width |W|/BUCKETS) of window W (ms; < 0: tumbling).
--   a            ZSET  (MAC and prefix identities) the addresses it used,
--                      score = their latest failure (ms); the ADDR_KEPT latest.
--   i            STR   (an address's keys) alias: the MAC identity this
--                      address belongs to, set by a sensor that saw the host
--                      on-link (SET PX by the client); a push of the address
--                      is then redirected there, nothing counted here.
--   c<det>:<k>   STR   the claim of one alert (SET NX: exactly one push
--                      claims it): "PUSH|count|alert_seq|t|start|index",
--                      PUSH the id of the push that crossed it, the rest
--                      what a retry of that push hands back.
-- Every key expires: relative TTLs, refreshed by each push.
--
-- FCALL slowscan_push_v3 1 PREFIX  SENSOR BATCH RETRY SLACK CAP DETECTORS
--       RESOLVE ADDRS (PAIR T_MS)…  — failures in time order; DETECTORS =
--       "WINDOW_MS THRESHOLD NAME|…" (the window negative for tumbling);
--       RESOLVE = 1: the source is an address, look up its alias first;
--       ADDRS = "ADDR T_MS,…" the addresses of the failures ("" for an
--       address identity: the key says it).
-- Reply: {-1, IDENTITY} when the address is an alias of IDENTITY (nothing
--   counted: push there); else
--   {withheld, claim…}; claim = {detector (0-based), count, alert_seq,
--   estimated, t (Unix ms of the crossing failure), window start (ms,
--   inclusive), index of the crossing failure in the call, first failure in
--   the window (ms), {sensors…}, {pair, t, pair, t, …} (the pairs in the
--   window, oldest first; a sample once sketched), replayed, {addresses in
--   the window, latest first (MAC and prefix identities)}}.

local SAMPLE = 32
-- A retried push looks for its claims among each detector's latest ones.
local REPLAY_SCAN = 16
local WRITTEN_KEPT = 16
local BUCKETS = 64
local TTL_MARGIN = 60000
-- Addresses an identity keeps (its alerts list the latest 16).
local ADDR_KEPT = 64

local function parse_written(s)
  local out = {}
  if s then
    for c, t in string.gmatch(s, '(%d+):(%d+)') do
      out[#out + 1] = { tonumber(c), tonumber(t) }
    end
  end
  return out
end

local function format_written(w)
  local parts = {}
  for i, e in ipairs(w) do
    parts[i] = string.format('%d:%d', e[1], e[2])
  end
  return table.concat(parts, ',')
end

-- The first failure time (inclusive) window w counts at t.
local function window_start(w, t, slack)
  if w > 0 then
    return t - w - slack + 1
  end
  return math.floor(t / -w) * -w
end

local function bucket_width(w)
  return math.ceil(math.abs(w) / BUCKETS)
end

local function bucket_key(base, w, x)
  return string.format('%sh%d:%d', base, w, x)
end

-- Parsed detector lists, by their signature (one per fleet, in practice):
-- kept across calls, so a call does not parse them or build field names.
local configs = {}
local nconfigs = 0

local function config(sig)
  local c = configs[sig]
  if c then
    return c
  end
  c = { dets = {}, wins = {}, fields = { 'm', 'w', 'c', 'o', 't' }, maxw = 0, min_th = math.huge }
  local wi = {}
  for w, th, name in string.gmatch(sig, '(%-?%d+) (%d+) ([^|]+)') do
    w = tonumber(w)
    th = tonumber(th)
    if not wi[w] then
      c.wins[#c.wins + 1] = w
      wi[w] = #c.wins
    end
    c.dets[#c.dets + 1] = { g = wi[w], th = th, name = name }
    c.fields[#c.fields + 1] = 'a' .. name
    c.fields[#c.fields + 1] = 'q' .. name
    c.fields[#c.fields + 1] = 'k' .. name
    if math.abs(w) > c.maxw then
      c.maxw = math.abs(w)
    end
    if th < c.min_th then
      c.min_th = th
    end
  end
  if nconfigs >= 64 then
    configs = {}
    nconfigs = 0
  end
  configs[sig] = c
  nconfigs = nconfigs + 1
  return c
end

local function push(keys, args)
  local base = keys[1]
  local kp, ks = base .. 'p', base .. 's'
  local sensor, batch = args[1], args[2]
  local retry = args[3] == '1'
  local slack = tonumber(args[4])
  local cap = tonumber(args[5])
  local cfg = config(args[6])
  local wins, maxw, min_th, fields = cfg.wins, cfg.maxw, cfg.min_th, cfg.fields
  local dets = {}
  for k, c in ipairs(cfg.dets) do
    dets[k] = { g = c.g, th = c.th, name = c.name }
  end
  if args[7] == '1' then
    local to = redis.call('GET', base .. 'i')
    if to then
      return { -1, to }
    end
  end
  local addrs = args[8]
  local first_arg = 9
  local nf = (#args - first_arg + 1) / 2
  local ttl = maxw + slack + TTL_MARGIN
  local ka = base .. 'a'
  if addrs ~= '' then
    local za = {}
    for a, t in string.gmatch(addrs, '([^ ,]+) (%d+)') do
      za[#za + 1] = t
      za[#za + 1] = a
    end
    if #za > 0 then
      redis.call('ZADD', ka, 'GT', unpack(za))
      redis.call('ZREMRANGEBYRANK', ka, 0, -(ADDR_KEPT + 1))
      redis.call('PEXPIRE', ka, ttl)
    end
  end

  local st = redis.call('HMGET', ks, unpack(fields))
  local sketched = st[1] == '1'
  local written = parse_written(st[2])
  local clock = tonumber(st[3]) or 0
  for k, d in ipairs(dets) do
    d.last = tonumber(st[3 * k + 3]) or 0
    d.seq = tonumber(st[3 * k + 4]) or 0
    d.claims = tonumber(st[3 * k + 5]) or 0
  end
  local latest = nf > 0 and tonumber(args[#args]) or 0

  -- A source with a single failed pair (the spoofed SYN, the misconfigured
  -- client) keeps it inline in its hash, as the engine keeps it in its slot:
  -- one key, and nothing to evaluate (one pair exceeds no threshold >= 1).
  local inline, inline_t = st[4], tonumber(st[5])
  if clock == 0 and min_th >= 1 and nf > 0 then
    inline = args[first_arg]
  end
  if inline then
    local same = true
    for j = 0, nf - 1 do
      if args[first_arg + 2 * j] ~= inline then
        same = false
        break
      end
    end
    if same then
      if nf > 0 then
        local t = math.max(inline_t or 0, latest)
        redis.call('HSET', ks, 'o', inline, 't', t, 'c', math.max(clock, latest),
          'n' .. sensor, latest)
        redis.call('PEXPIRE', ks, ttl)
      end
      return { 0 }
    end
    -- A second pair: the pair set starts with the first.
    redis.call('HDEL', ks, 'o', 't')
    if inline_t then
      redis.call('ZADD', kp, inline_t, inline)
    end
  end
  if clock > 0 and not sketched then
    redis.call('ZREMRANGEBYSCORE', kp, '-inf', '(' .. string.format('%d', clock - maxw - slack))
  end

  local dirty = false
  local withheld = 0
  local claims = {}

  -- Distinct pairs of window g at t, and the window's start.
  local function count(g, t)
    local w = wins[g]
    local s = window_start(w, t, slack)
    if sketched then
      local b = bucket_width(w)
      local hk = {}
      for x = math.floor(s / b), math.floor(t / b) do
        hk[#hk + 1] = bucket_key(base, w, x)
      end
      return redis.call('PFCOUNT', unpack(hk)), s
    end
    return redis.call('ZCOUNT', kp, s, t), s
  end

  local function build(k, seq, c, t, s, j, replayed)
    local pairs_in = redis.call('ZRANGE', kp, s, t, 'BYSCORE', 'WITHSCORES')
    local first = tonumber(pairs_in[2]) or t
    if sketched then
      first = s
    end
    local sn = redis.call('HGETALL', ks)
    local sensors = {}
    if latest >= s then
      sensors[1] = sensor
    end
    for x = 1, #sn, 2 do
      local name = sn[x]
      if string.byte(name, 1) == 110 and tonumber(sn[x + 1]) >= s and name ~= 'n' .. sensor then
        sensors[#sensors + 1] = string.sub(name, 2)
      end
    end
    local used = {}
    if addrs ~= '' then
      used = redis.call('ZRANGE', ka, t, s, 'BYSCORE', 'REV')
    end
    return { k - 1, c, seq, sketched and 1 or 0, t, s, j, first, sensors, pairs_in,
      replayed and 1 or 0, used }
  end

  -- A retried push (its reply was lost, or its replication unconfirmed):
  -- every claim it made before, as it made it (its count and alert_seq,
  -- not today's), if the store kept them. Other pushes may have claimed
  -- later crossings meanwhile, so not only the latest claim is looked at.
  if retry then
    local mine = batch .. '|'
    for k, d in ipairs(dets) do
      for x = math.max(1, d.claims - REPLAY_SCAN + 1), d.claims do
        local v = redis.call('GET', base .. 'c' .. d.name .. ':' .. x)
        if v and string.sub(v, 1, #mine) == mine then
          local c, seq, t, s, j = string.match(string.sub(v, #mine + 1),
            '^(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%d+)$')
          if c then
            claims[#claims + 1] = build(k, tonumber(seq), tonumber(c), tonumber(t),
              tonumber(s), tonumber(j), true)
          end
        end
      end
    end
  end

  -- R8 for every detector at t (the failure j just counted).
  local function decide(t, j, counts, starts)
    for k, d in ipairs(dets) do
      local c, s = counts[d.g], starts[d.g]
      if not c then
        c, s = count(d.g, t)
        counts[d.g], starts[d.g] = c, s
      end
      local fire
      if d.last == 0 then
        fire = c > d.th
      else
        fire = c >= 2 * d.last
      end
      if fire then
        d.last = c
        d.seq = d.seq + 1
        dirty = true
        local seen = false
        for _, e in ipairs(written) do
          if e[2] >= s and c < 2 * e[1] then
            seen = true
            break
          end
        end
        if seen then
          withheld = withheld + 1
        else
          local kept = {}
          for _, e in ipairs(written) do
            if e[1] > c then
              kept[#kept + 1] = e
            end
          end
          if #kept == WRITTEN_KEPT then
            table.remove(kept, 1)
          end
          kept[#kept + 1] = { c, t }
          written = kept
          d.claims = d.claims + 1
          local ck = base .. 'c' .. d.name .. ':' .. d.claims
          local v = string.format('%s|%d|%d|%d|%d|%d', batch, c, d.seq, t, s, j)
          if redis.call('SET', ck, v, 'NX', 'PX', ttl) then
            claims[#claims + 1] = build(k, d.seq, c, t, s, j, false)
          end
        end
      end
    end
  end

  -- R8: a count back at or below a detector's threshold re-arms it (only as
  -- the source's time moves forward: a late push never re-arms). Returns
  -- the counts (and starts) it looked at, before the failure at t is added.
  local function rearm(t)
    local counts, starts = {}, {}
    for _, d in ipairs(dets) do
      if d.last ~= 0 then
        local c = counts[d.g]
        if not c then
          c, starts[d.g] = count(d.g, t)
          counts[d.g] = c
        end
        if c <= d.th then
          d.last = 0
          d.seq = 0
          dirty = true
        end
      end
    end
    return counts, starts
  end

  -- Past the exact cap: every pair into its buckets' HyperLogLogs, and the
  -- pair set down to a sample (as the engine does, right after the failure
  -- that made it exceed the cap).
  local function to_sketch()
    redis.call('ZREMRANGEBYSCORE', kp, '-inf', '(' .. string.format('%d', clock - maxw - slack))
    if redis.call('ZCARD', kp) <= cap then
      return
    end
    local all = redis.call('ZRANGE', kp, 0, -1, 'WITHSCORES')
    for _, w in ipairs(wins) do
      local b = bucket_width(w)
      local by = {}
      for x = 1, #all, 2 do
        local hk = bucket_key(base, w, math.floor(tonumber(all[x + 1]) / b))
        local v = by[hk]
        if not v then
          v = {}
          by[hk] = v
        end
        v[#v + 1] = all[x]
      end
      for hk, v in pairs(by) do
        redis.call('PFADD', hk, unpack(v))
        redis.call('PEXPIRE', hk, math.abs(w) + b + slack + TTL_MARGIN)
      end
    end
    -- The sample, re-created so that it is compact again (a ZSET that
    -- grew past 128 members keeps its large encoding when it shrinks).
    local keep = redis.call('ZRANGE', kp, -SAMPLE, -1, 'WITHSCORES')
    redis.call('DEL', kp)
    local za = {}
    for x = 1, #keep, 2 do
      za[#za + 1] = keep[x + 1]
      za[#za + 1] = keep[x]
    end
    redis.call('ZADD', kp, unpack(za))
    sketched = true
    dirty = true
  end

  local n = 0
  if not sketched and nf > 0 and (clock > 0 or inline) then
    n = redis.call('ZCARD', kp)
  end
  local tmax = 0
  for j = 0, nf - 1 do
    local pair = args[first_arg + 2 * j]
    local t = tonumber(args[first_arg + 2 * j + 1])
    local forward = t >= clock
    if forward then
      clock = t
    end
    if t > tmax then
      tmax = t
    end
    if sketched then
      for _, w in ipairs(wins) do
        local b = bucket_width(w)
        local hk = bucket_key(base, w, math.floor(t / b))
        if redis.call('PFADD', hk, pair) == 1 then
          redis.call('PEXPIRE', hk, math.abs(w) + b + slack + TTL_MARGIN)
        end
      end
      redis.call('ZADD', kp, 'GT', t, pair)
    else
      local armed = false
      for _, d in ipairs(dets) do
        if d.last ~= 0 then
          armed = true
          break
        end
      end
      local pre, starts = {}, {}
      if armed and forward then
        pre, starts = rearm(t)
      end
      -- The pair's previous latest failure: whether it adds to a count.
      local prev
      if armed or n >= min_th then
        prev = tonumber(redis.call('ZSCORE', kp, pair))
      end
      n = n + redis.call('ZADD', kp, 'GT', t, pair)
      if armed or n > min_th then
        local counts = {}
        for g, c in pairs(pre) do
          if prev == nil or prev < starts[g] then
            c = c + 1
          end
          counts[g] = c
        end
        decide(t, j, counts, starts)
      end
      if n > cap then
        to_sketch()
        n = 0
      end
    end
  end

  if sketched and nf > 0 and tmax > 0 then
    -- Beyond the exact cap a push is evaluated once, at its latest failure.
    if tmax >= clock then
      rearm(tmax)
    end
    decide(tmax, nf - 1, {}, {})
    redis.call('ZREMRANGEBYRANK', kp, 0, -(SAMPLE + 1))
  end

  local hs = {}
  if nf > 0 then
    -- The source's time, and this sensor's latest failure (the alert's
    -- contributing sensors).
    hs = { 'c', clock, 'n' .. sensor, latest }
  end
  if dirty then
    local horizon = clock - maxw - slack
    local kept = {}
    for _, e in ipairs(written) do
      if e[2] > horizon then
        kept[#kept + 1] = e
      end
    end
    hs[#hs + 1] = 'w'
    hs[#hs + 1] = format_written(kept)
    if sketched then
      hs[#hs + 1] = 'm'
      hs[#hs + 1] = '1'
    end
    for _, d in ipairs(dets) do
      hs[#hs + 1] = 'a' .. d.name
      hs[#hs + 1] = d.last
      hs[#hs + 1] = 'q' .. d.name
      hs[#hs + 1] = d.seq
      hs[#hs + 1] = 'k' .. d.name
      hs[#hs + 1] = d.claims
    end
  end
  if #hs > 0 then
    redis.call('HSET', ks, unpack(hs))
    redis.call('PEXPIRE', ks, ttl)
    redis.call('PEXPIRE', kp, ttl)
  end
  local reply = { withheld }
  for _, c in ipairs(claims) do
    reply[#reply + 1] = c
  end
  return reply
end

redis.register_function('slowscan_push_v3', push)
