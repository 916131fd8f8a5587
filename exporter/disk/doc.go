// Package disk is the vocabulary of the disks c2vm writes: output formats,
// firmware, boot modes, sizes, the extra kernel command line, the GPT
// layout and the ids derived from a disk's content. It runs wherever its
// callers do (the frontend, the LLB builder, the assembly step, the host
// CLI) and does no I/O: it parses options and computes layouts, so the
// frontend can check options without importing the assembler.
package disk
