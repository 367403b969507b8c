#!/usr/bin/perl
# W8 with IO::AIO: one pass over the small-file tree (caches dropped by the
# caller): aio_open -> aio_read (one read of 64 KiB) -> aio_close per file,
# --depth files in flight.  Prints one JSON line.
use strict;
use warnings;
use Getopt::Long;
use Time::HiRes qw(time);
use Fcntl qw(O_RDONLY);
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or do { print "{\"skipped\": \"not installed: IO::AIO\"}\n"; exit 0 } }

my ($tree, $depth, $threads) = (undef, 64, 0);
GetOptions("tree=s" => \$tree, "depth=i" => \$depth, "threads=i" => \$threads) or die;
IO::AIO::min_parallel($threads), IO::AIO::max_parallel($threads) if $threads;
my @paths;
open(my $m, "<", "$tree/manifest.tsv") or die "$tree/manifest.tsv: $!";
while (<$m>) { chomp; my (undef, $rel) = split /\t/; push @paths, "$tree/$rel"; }
close $m;
my $MAX = 65536;
my $n = @paths;
my ($nxt, $nbytes, $nfiles) = (0, 0, 0);
my (@fh, @buf, @on_open, @on_read, @on_close);
sub start { my ($s) = @_; aio_open($paths[$nxt++], O_RDONLY, 0, $on_open[$s]) if $nxt < $n; }
for my $s (0 .. $depth - 1) {
    $buf[$s] = "\0" x $MAX;
    $on_open[$s] = sub { $fh[$s] = $_[0] or die "aio_open: $!\n"; aio_read($fh[$s], 0, $MAX, $buf[$s], 0, $on_read[$s]); };
    $on_read[$s] = sub { $_[0] >= 0 or die "aio_read: $!\n"; $nbytes += $_[0]; aio_close($fh[$s], $on_close[$s]); };
    $on_close[$s] = sub { $nfiles++; start($s); };
}
my $t0 = time;
start($_) for 0 .. $depth - 1;
my $pfd = IO::AIO::poll_fileno();
while (IO::AIO::nreqs()) {
    my $rin = '';
    vec($rin, $pfd, 1) = 1;
    select($rin, undef, undef, 1);
    IO::AIO::poll_cb();
}
my $secs = time - $t0;
printf "{\"files\": %d, \"bytes\": %d, \"seconds\": %.4f, \"files_per_s\": %d, \"note\": \"IO::AIO open/read/close, max_parallel %s\"}\n",
    $nfiles, $nbytes, $secs, $nfiles / $secs, $threads || "default";
