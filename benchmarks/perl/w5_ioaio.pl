#!/usr/bin/perl
# W5 with IO::AIO: 4 KiB random O_DIRECT reads, --depth in flight, each
# callback starting the next read into its slot of one page-aligned buffer
# (O_DIRECT wants aligned memory: the slots start at the first page
# boundary inside one perl string).  Prints one JSON line.
use strict;
use warnings;
use Getopt::Long;
use Time::HiRes qw(time);
use Fcntl qw(O_RDONLY);
BEGIN { eval { require IO::AIO; IO::AIO->import; 1 } or do { print "{\"skipped\": \"not installed: IO::AIO\"}\n"; exit 0 } }

my ($file, $size, $seconds, $depth, $threads) = (undef, 4 << 30, 5, 64, 0);
GetOptions("file=s" => \$file, "size=i" => \$size, "seconds=f" => \$seconds, "depth=i" => \$depth,
           "threads=i" => \$threads) or die;
IO::AIO::max_parallel($threads), IO::AIO::min_parallel($threads) if $threads;
sysopen(my $fh, $file, O_RDONLY | IO::AIO::O_DIRECT()) or die "open $file: $!";
my $B = 4096;
my $nblocks = int($size / $B);
my $buf = "\0" x (($depth + 1) * $B);
my $base = unpack("J", pack("p", $buf));
my $skew = ($B - $base % $B) % $B;
srand(42);
my ($done, $stop) = (0, 0);
my @cb;
for my $slot (0 .. $depth - 1) {
    $cb[$slot] = sub {
        $_[0] == $B or die "aio_read: $_[0] $!\n";
        $done++;
        aio_read($fh, int(rand($nblocks)) * $B, $B, $buf, $skew + $slot * $B, $cb[$slot]) unless $stop;
    };
}
aio_read($fh, int(rand($nblocks)) * $B, $B, $buf, $skew + $_ * $B, $cb[$_]) for 0 .. $depth - 1;
my $pfd = IO::AIO::poll_fileno();
my $t0 = time;
my $end = $t0 + $seconds;
while (time < $end) {
    my $rin = '';
    vec($rin, $pfd, 1) = 1;
    select($rin, undef, undef, 0.1);
    IO::AIO::poll_cb();
}
$stop = 1;
my $t1 = time;
my $n = $done;
IO::AIO::flush();
printf "{\"ops\": %d, \"seconds\": %.3f, \"iops\": %d, \"threads\": %d, \"note\": \"IO::AIO aio_read callbacks, max_parallel %d\"}\n",
    $n, $t1 - $t0, $n / ($t1 - $t0), IO::AIO::nthreads(), $threads || 8;
