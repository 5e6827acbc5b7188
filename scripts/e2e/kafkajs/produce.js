// kafkajs against Troupe: an idempotent producer writes records with keys
// and headers in each codec kafkajs ships (none, gzip), the high
// watermarks must show exactly that many records, and kcat must read every
// one back exactly once. kafkajs's consumer needs consumer groups, which
// Troupe does not have yet, so kcat reads.
//
// Usage: node produce.js HOST:PORT   (E2E_RECORDS, E2E_PARTITIONS as e2e.sh)
'use strict'
const { execFileSync } = require('child_process')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const bootstrap = process.argv[2]
const N = parseInt(process.env.E2E_RECORDS || '10000', 10)
const PARTITIONS = parseInt(process.env.E2E_PARTITIONS || '3', 10)
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const kafka = new Kafka({ brokers: [bootstrap], clientId: 'troupe-e2e-kafkajs', logLevel: logLevel.ERROR })

async function runCodec (name, codec) {
  const topic = `kafkajs-${name}`
  const t0 = Date.now()
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const want = new Map()
  for (let start = 0; start < N; start += 1000) {
    const messages = []
    for (let i = start; i < Math.min(N, start + 1000); i++) {
      const m = { key: `k${i}`, value: `${name}-v${i}`, headers: { seq: String(i) } }
      want.set(m.value, m)
      messages.push(m)
    }
    await producer.send({ topic, messages, compression: codec, acks: -1 })
  }
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const stored = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0)
  if (stored !== N) throw new Error(`high watermarks hold ${stored} records, want ${N}`)

  const out = execFileSync('kcat', ['-b', bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q',
    '-f', '%k\t%s\t%h\n'], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120000 })
  const seen = new Set()
  for (const line of out.split('\n')) {
    if (line === '') continue
    const [key, value, headers] = line.split('\t')
    const m = want.get(value)
    if (!m) throw new Error(`unexpected record ${JSON.stringify(line)}`)
    if (seen.has(value)) throw new Error(`record ${value} read twice`)
    if (key !== m.key || headers !== `seq=${m.headers.seq}`) throw new Error(`record ${value}: key ${key} headers ${headers}`)
    seen.add(value)
  }
  if (seen.size !== N) throw new Error(`kcat read ${seen.size} records, want ${N}`)
  return (Date.now() - t0) / 1000
}

;(async () => {
  let failed = 0
  for (const [name, codec] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
    try {
      const secs = await runCodec(name, codec)
      console.log(`PASS kafkajs ${name} (${N} records, ${secs.toFixed(1)}s)`)
    } catch (e) {
      failed++
      console.log(`FAIL kafkajs ${name}: ${e.message}`)
    }
  }
  process.exit(failed ? 1 : 0)
})()
