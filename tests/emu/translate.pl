#!/usr/bin/perl
# tests/emu/translate.pl IN OUT: a CUDA source of caf's (kernels/cuda/*.cu, *.cuh) rewritten for
# the CPU emulator (tests/emu/cuda_emu.h). The one change: every launch
#     kernel<<<grid, block, shared, stream>>>(args);
# becomes
#     ::caf_emu::launch_kernel(::caf_emu::bind_kernel([](const auto&... a) { kernel(a...); }, args),
#                              grid, block, shared, stream);
# so the arguments are evaluated once, at the launch, and copied, as CUDA copies a kernel's
# parameters, and each emulated thread calls the kernel with those copies (also when a captured
# graph replays the launch later). Line breaks are kept and a #line directive names the original
# file, so compiler messages point at the real source.
use strict;
use warnings;
my ($in, $out) = @ARGV;
open(my $fh, '<', $in) or die "translate.pl: cannot read $in: $!\n";
local $/;
my $src = <$fh>;
close($fh);
$src =~ s{([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;}{
  my ($kernel, $config, $args) = ($1, $2, $3);
  "::caf_emu::launch_kernel(::caf_emu::bind_kernel([](const auto&... caf_emu_a) { $kernel(caf_emu_a...); }" .
      ($args =~ /\S/ ? ", $args" : "") . "), $config);"
}gse;
die "translate.pl: a launch in $in was not rewritten\n" if $src =~ /<<</;
open(my $oh, '>', "$out.tmp") or die "translate.pl: cannot write $out: $!\n";
print $oh "#line 1 \"$in\"\n", $src;
close($oh) or die "translate.pl: cannot write $out: $!\n";
rename("$out.tmp", $out) or die "translate.pl: cannot rename to $out: $!\n";
