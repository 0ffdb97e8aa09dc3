"""Reads TensorBoard event files record by record, independently of runner's writer:
its own CRC-32C, its own protobuf wire-format decoder, and the field numbers of
tensorflow/tensorboard's event.proto, summary.proto, tensor.proto and the hparams
plugin's plugin_data.proto. Prints one JSON object per event; exits 1 on a bad record.

usage: read_tfevents.py EVENT_FILE"""
import json
import struct
import sys

_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def value_proto(buf):  # google.protobuf.Value
    for num, _, v in fields(buf):
        if num == 2:
            return struct.unpack("<d", v)[0]
        if num == 3:
            return v.decode()
        if num == 4:
            return bool(v)
    return None


def hparams_data(buf):  # HParamsPluginData
    out = {}
    for num, _, v in fields(buf):
        if num == 1:
            out["version"] = v
        elif num == 2:  # Experiment
            exp = {"hparams": [], "metrics": []}
            for n2, _, v2 in fields(v):
                if n2 == 4:
                    exp["hparams"].append(dict((n3, v3) for n3, _, v3 in fields(v2)).get(1, b"").decode())
                elif n2 == 5:
                    name = dict((n3, v3) for n3, _, v3 in fields(v2)).get(1, b"")
                    exp["metrics"].append(dict((n4, v4) for n4, _, v4 in fields(name)).get(2, b"").decode())
            out["experiment"] = exp
        elif num == 3:  # SessionStartInfo
            hp = {}
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    entry = dict((n3, v3) for n3, _, v3 in fields(v2))
                    hp[entry[1].decode()] = value_proto(entry.get(2, b""))
            out["session_start_info"] = hp
        elif num == 4:  # SessionEndInfo
            out["session_end_info"] = dict((n2, v2) for n2, _, v2 in fields(v)).get(1, 0)
    return out


def summary_value(buf):
    out = {}
    for num, _, v in fields(buf):
        if num == 1:
            out["tag"] = v.decode()
        elif num == 2:
            out["simple_value"] = struct.unpack("<f", v)[0]
        elif num == 9:  # SummaryMetadata
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    pd = dict((n3, v3) for n3, _, v3 in fields(v2))
                    out["plugin"] = pd.get(1, b"").decode()
                    out["content"] = pd.get(2, b"")
        elif num == 8:  # TensorProto
            t = {"string_val": []}
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    t["dtype"] = v2
                elif n2 == 8:
                    t["string_val"].append(v2.decode())
            out["tensor"] = t
    if out.get("plugin") == "hparams":
        out["hparams"] = hparams_data(out.pop("content"))
    else:
        out.pop("content", None)
    return out


def events(path):
    data = open(path, "rb").read()
    i = n = 0
    while i < len(data):
        n += 1
        if len(data) - i < 12:
            raise ValueError(f"record {n}: truncated header")
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hcrc != masked(header):
            raise ValueError(f"record {n}: bad length CRC")
        body = data[i + 12:i + 12 + length]
        (bcrc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if len(body) != length or bcrc != masked(body):
            raise ValueError(f"record {n}: bad data CRC")
        i += 16 + length
        ev = {"step": 0}
        for num, _, v in fields(body):
            if num == 1:
                ev["wall_time"] = struct.unpack("<d", v)[0]
            elif num == 2:
                ev["step"] = v
            elif num == 3:
                ev["file_version"] = v.decode()
            elif num == 5:
                ev["values"] = [summary_value(v2) for n2, _, v2 in fields(v) if n2 == 1]
            elif num == 7:
                ev["session_log"] = dict((n2, v2) for n2, _, v2 in fields(v)).get(1, 0)
        yield ev


if __name__ == "__main__":
    try:
        for e in events(sys.argv[1]):
            print(json.dumps(e))
    except (ValueError, IndexError, KeyError, struct.error) as err:
        print(f"{sys.argv[1]}: {err}", file=sys.stderr)
        sys.exit(1)
