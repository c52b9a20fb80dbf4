import ij.gui.Roi;
import ij.io.RoiDecoder;
import java.awt.Point;
import java.awt.Rectangle;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/** Decodes a RoiSet zip with ImageJ and prints, per ROI, the pixels ImageJ gives it.
 *  One line per ROI: name TAB type TAB zPosition TAB x,y x,y ...
 *  Areas: the pixels of Roi.getMask(); lines and points: Roi.getContainedPoints(). */
public class RoiCheck {
    public static void main(String[] args) throws Exception {
        ZipInputStream zip = new ZipInputStream(new FileInputStream(args[0]));
        ZipEntry entry;
        StringBuilder out = new StringBuilder();
        while ((entry = zip.getNextEntry()) != null) {
            byte[] bytes = readAll(zip);
            Roi roi = RoiDecoder.openFromByteArray(bytes);
            String name = entry.getName().replaceAll("\\.roi$", "");
            out.append(name).append('\t').append(roi.getType()).append('\t')
               .append(roi.getZPosition()).append('\t');
            if (roi.isArea()) {
                Rectangle box = roi.getBounds();
                ij.process.ImageProcessor mask = roi.getMask();
                for (int y = 0; y < box.height; y++)
                    for (int x = 0; x < box.width; x++)
                        if (mask == null || mask.get(x, y) != 0)
                            out.append(box.x + x).append(',').append(box.y + y).append(' ');
            } else {
                for (Point p : roi.getContainedPoints())
                    out.append(p.x).append(',').append(p.y).append(' ');
            }
            out.append('\n');
        }
        System.out.print(out);
    }

    static byte[] readAll(InputStream in) throws Exception {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        byte[] chunk = new byte[65536];
        int n;
        while ((n = in.read(chunk)) > 0) buffer.write(chunk, 0, n);
        return buffer.toByteArray();
    }
}
