// Command cpuid generates runtime/kernels' CPUID access: the kernels' dispatch
// reads the vendor with it, where the same code is tuned differently for
// Intel and AMD cores (golang.org/x/sys/cpu reports features, not vendors).
package main

//go:generate go run . -out ../../runtime/kernels/cpuid_amd64.s -stubs ../../runtime/kernels/cpuid_amd64_stubs.go -pkg kernels

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!purego")
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid runs CPUID for leaf (EAX) and subleaf (ECX) and returns the four registers.")
	Comment("EAX = leaf, ECX = sub; CPUID")
	Load(Param("leaf"), EAX)
	Load(Param("sub"), ECX)
	CPUID()
	Comment("return EAX, EBX, ECX, EDX")
	Store(EAX, Return("eax"))
	Store(EBX, Return("ebx"))
	Store(ECX, Return("ecx"))
	Store(EDX, Return("edx"))
	RET()
	Generate()
}
