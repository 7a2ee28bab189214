package main

import (
	"fmt"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
)

// constant is one C name and its value as C source.
type constant struct{ name, value string }

// section is a group of constants, as #defines or one anonymous enum.
type section struct {
	title  string
	enum   bool
	consts []constant
}

func hex32(v uint32) string { return fmt.Sprintf("0x%08xu", v) }
func dec(v int) string      { return fmt.Sprint(v) }
func typ(t protocol.Type) string {
	return fmt.Sprintf("0x%02x", uint16(t))
}

func sections() []section {
	return []section{
		{title: "Message header (docs/protocol.md §1)", consts: []constant{
			{"SLIM_MAGIC", hex32(protocol.Magic)},
			{"SLIM_VERSION", dec(protocol.Version)},
			{"SLIM_HEADER_SIZE", dec(protocol.HeaderSize)},
			{"SLIM_MAX_PAYLOAD", dec(protocol.MaxPayload)},
			{"SLIM_POOL_CAP", dec(protocol.MaxPool)},
		}},
		{title: "Message types: requests from the shim, replies from the router", enum: true, consts: []constant{
			{"SLIM_T_HELLO", typ(protocol.TypeHello)},
			{"SLIM_T_POOL", typ(protocol.TypePool)},
			{"SLIM_T_LISTEN", typ(protocol.TypeListen)},
			{"SLIM_T_UNLISTEN", typ(protocol.TypeUnlisten)},
			{"SLIM_T_STATS", typ(protocol.TypeStats)},
			{"SLIM_T_ENROLL", typ(protocol.TypeEnroll)},
			{"SLIM_T_TABLE", typ(protocol.TypeTable)},
			{"SLIM_T_PUBLISH", typ(protocol.TypePublish)},
			{"SLIM_T_RESERVE", typ(protocol.TypeReserve)},
			{"SLIM_T_NAMEBOOK", typ(protocol.TypeNameBook)},
			{"SLIM_T_OK", typ(protocol.TypeOK)},
			{"SLIM_T_HELLO_OK", typ(protocol.TypeHelloOK)},
			{"SLIM_T_POOL_OK", typ(protocol.TypePoolOK)},
			{"SLIM_T_LISTEN_OK", typ(protocol.TypeListenOK)},
			{"SLIM_T_TABLE_OK", typ(protocol.TypeTableOK)},
			{"SLIM_T_NAMEBOOK_OK", typ(protocol.TypeNameBookOK)},
			{"SLIM_T_ERROR", typ(protocol.TypeError)},
		}},
		{title: "Why a connect went over the overlay: STATS fallback indexes", enum: true, consts: []constant{
			{"SLIM_FB_ROUTER", dec(int(protocol.FallbackRouterUnreachable))},
			{"SLIM_FB_NODIR", dec(int(protocol.FallbackNoDirectoryEntry))},
			{"SLIM_FB_BOUND", dec(int(protocol.FallbackBoundElsewhere))},
			{"SLIM_FB_OPTION", dec(int(protocol.FallbackOptionNotReplayable))},
			{"SLIM_FB_POOL", dec(int(protocol.FallbackPoolEmpty))},
			{"SLIM_FB_OTHER", dec(int(protocol.FallbackOther))},
			{"SLIM_FB_IPV6", dec(int(protocol.FallbackIPv6))},
			{"SLIM_FB_COUNT", dec(int(protocol.FallbackReasons))},
		}},
		{title: "STATS setup-time histogram: bucket i counts setups under 2^i us", consts: []constant{
			{"SLIM_SETUP_BUCKETS", dec(protocol.SetupBuckets)},
		}},
		{title: "Preamble of an accelerated connection", consts: []constant{
			{"SLIM_PREAMBLE_MAGIC", hex32(protocol.PreambleMagic)},
			{"SLIM_PREAMBLE_VERSION", dec(protocol.PreambleVersion)},
			{"SLIM_PREAMBLE_LEN", dec(protocol.PreambleSize)},
			{"SLIM_PREAMBLE_F_IPV6", dec(protocol.PreambleFlagIPv6)},
		}},
		{title: "Name book (docs/protocol.md §6): header, then buckets of slots", consts: []constant{
			{"SLIM_BOOK_MAGIC", hex32(namebook.Magic)},
			{"SLIM_BOOK_VERSION", dec(namebook.Version)},
			{"SLIM_BOOK_HDR", dec(namebook.HeaderSize)},
			{"SLIM_BOOK_SLOT", dec(namebook.SlotSize)},
			{"SLIM_BOOK_WAYS", dec(namebook.Ways)},
			{"SLIM_BOOK_OFF_SLOTS", dec(namebook.OffSlots)},
			{"SLIM_BOOK_OFF_WAYS", dec(namebook.OffWays)},
			{"SLIM_BOOK_OFF_SEQ", dec(namebook.OffSeq)},
			{"SLIM_BOOK_OFF_STAMP", dec(namebook.OffStamp)},
			{"SLIM_BOOK_OFF_COOKIE", dec(namebook.OffCookie)},
			{"SLIM_BOOK_OFF_NAMES", dec(namebook.OffNames)},
			{"SLIM_NAMES_LEN", dec(namebook.NamesSize)},
			{"SLIM_NAMES_V4", dec(int(namebook.FormIPv4))},
			{"SLIM_NAMES_MAPPED", dec(int(namebook.FormMapped))},
			{"SLIM_NAMES_OV6", dec(int(namebook.FormIPv6))},
		}},
		{title: "Directory table (docs/protocol.md §2): header, then slots", consts: []constant{
			{"SLIM_DIR_MAGIC", hex32(directory.Magic)},
			{"SLIM_DIR_VERSION", dec(directory.Version)},
			{"SLIM_DIR_HDR", dec(directory.HeaderSize)},
			{"SLIM_DIR_SLOT", dec(directory.SlotSize)},
			{"SLIM_DIR_REPLACED", dec(directory.ReplacedOffset)},
			{"SLIM_DIR_F_IPV6", dec(int(directory.FlagIPv6))},
			{"SLIM_DIR_F_NOIPV4", dec(int(directory.FlagNoIPv4))},
		}},
	}
}
