#!/usr/bin/perl
# tests/emu/translate.pl IN OUT: a CUDA source of caf's (kernels/cuda/*.cu, *.cuh) rewritten for
# the CPU emulator (tests/emu/cuda_emu.h). The one change: every launch
#     kernel<<<grid, block, shared, stream>>>(args);
# becomes
#     ::caf_emu::launch_kernel([&] { kernel(args); }, grid, block, shared, stream);
# so each emulated thread calls the kernel with the launch's arguments. Line breaks are kept and a
# #line directive names the original file, so compiler messages point at the real source.
use strict;
use warnings;
my ($in, $out) = @ARGV;
open(my $fh, '<', $in) or die "translate.pl: cannot read $in: $!\n";
local $/;
my $src = <$fh>;
close($fh);
my $n = ($src =~ s/([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;/::caf_emu::launch_kernel([&] { $1($3); }, $2);/gs);
die "translate.pl: a launch in $in was not rewritten\n" if $src =~ /<<</;
open(my $oh, '>', "$out.tmp") or die "translate.pl: cannot write $out: $!\n";
print $oh "#line 1 \"$in\"\n", $src;
close($oh) or die "translate.pl: cannot write $out: $!\n";
rename("$out.tmp", $out) or die "translate.pl: cannot rename to $out: $!\n";
