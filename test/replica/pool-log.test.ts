// The validated pool's log on disk (harness/replica/pool-log.ts): an entry's header is written
// without the generic value encoder (issue 13 item 4), byte for byte what that encoder writes —
// the format the log is read back with, and the bytes storage faults act on.
import test from "ava";
import fc from "fast-check";
import { entryHeaderRecord } from "../../harness/replica/pool-log.ts";
import { Blob, decodeValue, encodeValue, openRecord } from "../../harness/sim/disk-records.ts";

test("issue 13 item 4: a pool-log entry header is the sealed record of its encoded value, and reads back", (t) => {
  fc.assert(
    fc.property(fc.nat(), fc.nat(), (artifacts, maxHeight) => {
      const header = { artifacts, maxHeight };
      const bytes = Blob.concat([entryHeaderRecord(header)]);
      const opened = openRecord(bytes);
      return Buffer.from(bytes).equals(Blob.concat([Blob.record(encodeValue(header))])) && opened.ok && JSON.stringify(decodeValue(opened.payload)) === JSON.stringify(header);
    }),
    { numRuns: 500 },
  );
  t.pass();
});
